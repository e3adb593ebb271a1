"""The ``/_emulator/`` endpoint: reset, info, settings, faults, call counters."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .calls import CallStats
from .faults import InjectedFaults
from .settings import EmulatorSettings
from .wsgi_util import WsgiResponse, json_response, read_body

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator/"


class BadRequest(ValueError):
    """A client mistake, answered with 400 and its message."""


@dataclass
class AdminApi:
    settings: EmulatorSettings
    calls: CallStats
    faults: InjectedFaults
    reset: Callable[[], dict[str, Any]]
    info: Callable[[], dict[str, Any]]

    def handle(self, environ: dict[str, Any]) -> WsgiResponse:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        routes: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
            "reset": ("POST", lambda _: self.reset()),
            "info": ("GET", lambda _: self.info()),
            "settings": ("POST", self.settings.update_runtime),
            "faults": ("POST", self._inject_fault),
            "calls": ("GET", lambda _: self.calls.snapshot()),
            "calls/reset": ("POST", self._reset_calls),
        }
        route = routes.get(path[len(ADMIN_PREFIX) :].strip("/"))
        if route is None:
            return json_response(404, {"error": f"no such admin endpoint: {path}"})
        expected, action = route
        if method != expected:
            return json_response(405, {"error": f"{path} accepts {expected} only"})
        try:
            payload = _json_object(read_body(environ)) if method == "POST" else {}
            return json_response(200, action(payload))
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        except Exception as exc:  # never answer with a stack trace
            log.exception("admin endpoint %s failed", path)
            return json_response(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _inject_fault(self, payload: dict[str, Any]) -> dict[str, Any]:
        service, fault = payload.get("service"), payload.get("fault")
        cluster = payload.get("cluster")
        if not isinstance(service, str) or not service:
            raise BadRequest("'service' (the service name) is required")
        if cluster is not None and not isinstance(cluster, str):
            raise BadRequest("'cluster' must be a string")
        self.faults.inject(service, str(fault), cluster)
        return {"service": service, "fault": fault, "cluster": cluster}

    def _reset_calls(self, _: dict[str, Any]) -> dict[str, Any]:
        self.calls.reset()
        return self.calls.snapshot()


def _json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    return payload
