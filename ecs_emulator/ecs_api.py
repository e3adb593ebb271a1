"""ECS request hooks around moto: the fixes real clients notice.

- Task operations (ListTasks, RunTask, StopTask, DescribeTasks): see ``task_api.py``.
- CreateService: refuse names that are ACTIVE or still DRAINING, as ECS does.
- UpdateService: refuse services that are not ACTIVE; decide about a new deployment.
- DeleteService: DRAINING while tasks stop, INACTIVE afterwards.
Create/Update/Delete responses are re-rendered after the scheduler saw the change, so the
caller gets the new deployment id and the full task definition ARN.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .moto_internals import ServiceRef, find_service
from .scheduler import Scheduler
from .task_api import TaskHooks
from .wsgi_util import WsgiResponse, aws_error, call_app, json_response, with_body

log = logging.getLogger(__name__)

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."


def ecs_operation(environ: dict[str, Any]) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target[len(ECS_TARGET_PREFIX) :] if target.startswith(ECS_TARGET_PREFIX) else None


class EcsHooks:
    """Dispatches one ECS request; must be called under the emulator lock."""

    def __init__(self, moto_app: Callable[..., Any], scheduler: Scheduler) -> None:
        self._moto = moto_app
        self._scheduler = scheduler
        self._handlers = {
            "CreateService": self._create_service,
            "UpdateService": self._update_service,
            "DeleteService": self._delete_service,
            **TaskHooks(moto_app, scheduler, self._call).handlers,
        }

    def handle(
        self, environ: dict[str, Any], operation: str, params: dict[str, Any]
    ) -> WsgiResponse:
        handler = self._handlers.get(operation)
        if handler is None:
            return call_app(self._moto, environ)
        try:
            return handler(environ, params)
        except Exception as exc:  # answer like AWS, never with a stack trace
            log.exception("emulator hook for %s failed", operation)
            return aws_error("ServerException", f"emulator error: {exc}", 500)

    def _call(
        self, environ: dict[str, Any], operation: str, params: dict[str, Any]
    ) -> WsgiResponse:
        """Ask moto directly (no throttling, no call counting)."""
        sub = with_body(
            environ,
            json.dumps(params).encode(),
            HTTP_X_AMZ_TARGET=ECS_TARGET_PREFIX + operation,
        )
        return call_app(self._moto, sub)

    def _existing_status(self, environ: dict[str, Any], cluster: str, service: str) -> str | None:
        found = self._call(environ, "DescribeServices", {"cluster": cluster, "services": [service]})
        services = found.json().get("services", []) if found.code == 200 else []
        return services[0]["status"] if services else None

    def _render_service(self, environ: dict[str, Any], cluster: str, arn: str) -> WsgiResponse:
        params = {"cluster": cluster, "services": [arn], "include": ["TAGS"]}
        found = self._call(environ, "DescribeServices", params)
        service = found.json()["services"][0]
        return json_response(200, {"service": service}, "application/x-amz-json-1.1")

    def _ref(self, arn: str, cluster: str) -> ServiceRef:
        _, _, _, region, account_id, resource = arn.split(":", 5)
        name = resource.split("/")[-1]
        ref = find_service(account_id, region, cluster.split("/")[-1], name)
        if ref is None:
            raise LookupError(f"service {arn} vanished")
        return ref

    def _create_service(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = params.get("cluster", "default")
        status = self._existing_status(environ, cluster, params.get("serviceName", ""))
        if status == "DRAINING":
            return aws_error(
                "InvalidParameterException", "Unable to Start a service that is still Draining."
            )
        if status == "ACTIVE":
            return aws_error("InvalidParameterException", "Creation of service was not idempotent.")
        created = call_app(self._moto, environ)
        if created.code != 200:
            return created
        arn = created.json()["service"]["serviceArn"]
        self._scheduler.on_service_created(self._ref(arn, cluster), params)
        return self._render_service(environ, cluster, arn)

    def _update_service(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = params.get("cluster", "default")
        status = self._existing_status(environ, cluster, params.get("service", ""))
        if status is not None and status != "ACTIVE":
            return aws_error("ServiceNotActiveException", "Service was not ACTIVE.")
        updated = call_app(self._moto, environ)
        if updated.code != 200:
            return updated
        arn = updated.json()["service"]["serviceArn"]
        self._scheduler.on_service_updated(self._ref(arn, cluster), params)
        return self._render_service(environ, cluster, arn)

    def _delete_service(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = params.get("cluster", "default")
        status = self._existing_status(environ, cluster, params.get("service", ""))
        if status in ("DRAINING", "INACTIVE"):
            return aws_error("ServiceNotActiveException", "Service was not ACTIVE.")
        deleted = call_app(self._moto, environ)
        if deleted.code != 200:
            return deleted
        arn = deleted.json()["service"]["serviceArn"]
        self._scheduler.on_service_deleted(self._ref(arn, cluster))
        return self._render_service(environ, cluster, arn)
