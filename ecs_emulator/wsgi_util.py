"""Tiny WSGI helpers: run an app to a complete response, build JSON responses."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

AWS_JSON = "application/x-amz-json-1.1"
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


@dataclass
class WsgiResponse:
    status: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


def json_response(code: int, payload: Any, content_type: str = "application/json") -> WsgiResponse:
    body = json.dumps(payload, default=str).encode()
    status = f"{code} {REASONS.get(code, 'Error')}"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    return WsgiResponse(status, headers, body)


def epoch_seconds(moment: datetime | None) -> float | None:
    """AWS's JSON protocol sends timestamps as epoch seconds."""
    return moment.timestamp() if moment is not None else None


def without_none(values: dict[str, Any]) -> dict[str, Any]:
    """An API shape without its unset members: AWS omits them rather than sending null."""
    return {key: value for key, value in values.items() if value is not None}


def aws_error(code: str, message: str, status: int = 400) -> WsgiResponse:
    """An AWS JSON-protocol error that botocore maps to ``ClientError`` with this code."""
    return json_response(status, {"__type": code, "message": message}, AWS_JSON)


def call_app(app: Callable[..., Any], environ: dict[str, Any]) -> WsgiResponse:
    """Run a WSGI app to completion so the caller can inspect or hold a lock around it."""
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return WsgiResponse(captured["status"], list(captured["headers"]), body)


def read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back, so the next app can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def with_body(environ: dict[str, Any], body: bytes, **headers: str) -> dict[str, Any]:
    """A copy of ``environ`` carrying another body (and overridden HTTP_* headers)."""
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    copy["CONTENT_LENGTH"] = str(len(body))
    copy.update(headers)
    return copy
