"""EmulatorAdmin: a stdlib client for the admin endpoint (usable from any process)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class EmulatorAdminError(RuntimeError):
    """The admin endpoint answered with an error status."""


class EmulatorAdmin:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def reset(self) -> dict[str, Any]:
        """Wipe all moto state and the scheduler, then re-seed; returns the seed info."""
        return self._request("POST", "reset", {})

    def info(self) -> dict[str, Any]:
        return self._request("GET", "info")

    def settings(self, **changes: float) -> dict[str, Any]:
        """Change task_start_seconds, task_stop_seconds, throttle_rate, health_check_seconds or
        traffic_rps at run time (all valid, or nothing changes)."""
        return self._request("POST", "settings", changes)

    def inject_fault(self, service: str, fault: str, cluster: str | None = None) -> dict[str, Any]:
        """Make the next deployment of ``service`` fail with nopull, crash, slow or unhealthy."""
        payload = {"service": service, "fault": fault, "cluster": cluster}
        return self._request("POST", "faults", payload)

    def calls(self) -> dict[str, Any]:
        return self._request("GET", "calls")

    def reset_calls(self) -> dict[str, Any]:
        return self._request("POST", "calls/reset", {})

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise EmulatorAdminError(f"{method} /_emulator/{path}: {exc.code} {detail}") from None
