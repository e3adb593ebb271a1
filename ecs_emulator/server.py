"""Wires moto's WSGI app, the middleware, the scheduler and the admin endpoint together.

moto keeps its backends in process-global state, so only one emulator may run per process.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from werkzeug.serving import BaseWSGIServer, make_server

from . import moto_cloudwatch, moto_serializer, moto_service_lookup, moto_service_render
from .admin import EmulatorAdmin
from .admin_api import ADMIN_PREFIX, AdminApi
from .calls import CallStats, HeldOperations
from .ecs_api import EcsHooks, ecs_operation
from .faults import InjectedFaults
from .keep_alive import ARRIVED_AT_KEY, KeepAliveRequestHandler
from .moto_internals import (
    moto_wsgi_app,
    reset_moto,
    without_default_amis,
)
from .scheduler import Scheduler
from .seed import INTERNAL_HEADER, AccountSeeder
from .settings import EmulatorSettings
from .traffic import Traffic
from .traffic_loop import TrafficLoop
from .wsgi_util import WsgiResponse, aws_error, call_app, read_body

INTERNAL_ENVIRON_KEY = "HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")

_running_lock = threading.Lock()
_running: list[Emulator] = []


class EmulatorMiddleware:
    """Admin routes, ECS throttling and counting, then moto under the scheduler's lock."""

    def __init__(
        self, moto_app: Any, hooks: EcsHooks, admin: AdminApi, lock: Any, held: HeldOperations
    ) -> None:
        self._moto = moto_app
        self._hooks = hooks
        self._admin = admin
        self._lock = lock
        self._held = held
        # Throttling spreads `throttle_rate` evenly over the calls (every third call at 1/3)
        # rather than by chance: a test that throttles a short run always sees some throttled.
        self._throttle_credit = 0.0
        self._throttle_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        response = self._respond(environ)
        start_response(response.status, response.headers)
        return [response.body]

    def _throttle_next(self) -> bool:
        with self._throttle_lock:
            self._throttle_credit += self._admin.settings.throttle_rate
            if self._throttle_credit >= 1.0:
                self._throttle_credit -= 1.0
                return True
            return False

    def _respond(self, environ: dict[str, Any]) -> WsgiResponse:
        if environ.get("PATH_INFO", "").startswith(ADMIN_PREFIX):
            return self._admin.handle(environ)
        operation = ecs_operation(environ)
        if operation is None:
            with self._lock:
                return call_app(self._moto, environ)
        internal = INTERNAL_ENVIRON_KEY in environ
        throttled = not internal and self._throttle_next()
        if not internal:
            self._admin.calls.record(operation, throttled, environ.get(ARRIVED_AT_KEY))
        if throttled:
            return aws_error("ThrottlingException", "Rate exceeded")
        self._held.wait_if_held(operation)
        if operation == "DescribeServices" and not internal:
            time.sleep(self._admin.settings.describe_services_delay_seconds)  # a stalled ECS
        try:
            params = json.loads(read_body(environ) or b"{}")
        except ValueError:
            params = None
        with self._lock:
            if not isinstance(params, dict):
                return call_app(self._moto, environ)
            return self._hooks.handle(environ, operation, params)


@dataclass
class Emulator:
    """A running emulator: ``url`` for boto3, ``admin`` for the admin endpoint."""

    settings: EmulatorSettings
    url: str
    admin: EmulatorAdmin
    seed: dict[str, Any]
    _server: BaseWSGIServer = field(repr=False)
    _server_thread: threading.Thread = field(repr=False)
    _scheduler: Scheduler = field(repr=False)
    _traffic: TrafficLoop = field(repr=False)
    _held: HeldOperations = field(repr=False)

    def hold(self, operation: str) -> AbstractContextManager[None]:
        """While the block runs, requests of `operation` (e.g. "RegisterTaskDefinition") are
        counted and then wait; at its end they go through, whether or not their caller is
        still there to read the answer."""
        return self._held.holding(operation)

    def stop(self) -> None:
        """Stop serving and scheduling (moto's state stays until the next start or reset)."""
        self._traffic.stop()
        self._scheduler.stop()
        self._server.shutdown()
        self._server.server_close()
        self._server_thread.join(timeout=5)
        with _running_lock:
            if self in _running:
                _running.remove(self)


def start_emulator(settings: EmulatorSettings | None = None) -> Emulator:
    """Serve moto plus the scheduler from daemon threads of this process; seeds the account."""
    settings = settings or EmulatorSettings()
    with _running_lock:
        if _running:
            raise RuntimeError("an ECS emulator already runs in this process (moto is global)")
        lock = threading.RLock()
        faults, calls = InjectedFaults(), CallStats()
        scheduler = Scheduler(settings, faults, lock)
        traffic = Traffic(settings, scheduler, np.random.default_rng())
        traffic_loop = TrafficLoop(traffic, lock)
        moto_cloudwatch.install()
        moto_serializer.install()
        moto_service_render.install()
        moto_service_lookup.install()
        without_default_amis()
        moto_app = moto_wsgi_app()
        seeded: dict[str, Any] = {}
        seeders: list[AccountSeeder] = []  # its one seeder, once the server has its URL

        def reset() -> dict[str, Any]:
            with lock:
                reset_moto()
                moto_service_render.forget()
                scheduler.reset()
                traffic.reset()
                faults.clear()
            seeded.clear()
            seeded.update(seeders[0].seed())
            calls.reset()
            return dict(seeded)

        def info() -> dict[str, Any]:
            return {**seeded, "settings": settings.runtime(), "traffic": traffic_loop.status()}

        admin_api = AdminApi(settings, calls, faults, reset, info)
        held = HeldOperations()
        app = EmulatorMiddleware(moto_app, EcsHooks(moto_app, scheduler), admin_api, lock, held)
        quiet_request_log()
        server = make_server(
            settings.host,
            settings.port,
            app,
            threaded=True,
            request_handler=KeepAliveRequestHandler,
        )
        url = f"http://{settings.host}:{server.server_port}"
        seeders.append(AccountSeeder(url, settings))
        thread = threading.Thread(target=server.serve_forever, name="ecs-emulator-http")
        thread.daemon = True
        thread.start()
        reset()
        scheduler.start()
        traffic_loop.start()
        emulator = Emulator(
            settings,
            url,
            EmulatorAdmin(url),
            dict(seeded),
            server,
            thread,
            scheduler,
            traffic_loop,
            held,
        )
        _running.append(emulator)
        return emulator


def quiet_request_log() -> None:
    """werkzeug logs every request at INFO; keep stderr for warnings unless configured."""
    logger = logging.getLogger("werkzeug")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
