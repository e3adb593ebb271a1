"""HTTP/1.1 keep-alive for the emulator's server.

werkzeug's development server closes the connection after every response (`Connection: close`:
Python's http.server does not drain a request body it left unread before the next request
line). So every ECS call a worker made opened a new connection, and the emulator started a new
thread for it: under a release train of 1,000 services, about 10,000 connections and threads
on each side. The emulator's answers are whole before they are sent (its middleware runs the
app to completion), so this handler reads each request's body in full before the app runs,
sends each answer with its length, and keeps the connection for the client's next call.

What it does not know how to keep open (a chunked or `Expect: 100-continue` request, a HEAD)
goes to werkzeug's own handling, which closes the connection as before.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from .arrivals import StampedSocketReader, stamp_arrivals
from .moto_internals import moto_request_handler

log = logging.getLogger(__name__)

_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})
# The WSGI environ's key for when the request reached the emulator (ecs_emulator.arrivals).
ARRIVED_AT_KEY = "ecs_emulator.arrived_at"


class KeepAliveRequestHandler(moto_request_handler()):  # type: ignore[misc]
    """moto's request handler, answering on a connection the client may use again."""

    protocol_version = "HTTP/1.1"
    _stamped: StampedSocketReader | None = None
    _arrived_at: float | None = None

    def setup(self) -> None:
        super().setup()
        if stamp_arrivals(self.connection):
            self._stamped = StampedSocketReader(self.connection)
            self.rfile = io.BufferedReader(self._stamped)

    def parse_request(self) -> bool:
        """Right after the request line is read: when it arrived."""
        self._arrived_at = self._stamped.last_received if self._stamped is not None else None
        return bool(super().parse_request())

    def make_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().make_environ()
        if self._arrived_at is not None:
            environ[ARRIVED_AT_KEY] = self._arrived_at
        return environ

    def run_wsgi(self) -> None:
        if not self._keepable():
            self.close_connection = True
            super().run_wsgi()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            status, headers, data = self._answer(environ)
        except Exception:  # as werkzeug does: a 500, and the connection closed
            log.exception("emulator request failed")
            self.close_connection = True
            self.send_error(500)
            return
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _keepable(self) -> bool:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        expects = self.headers.get("Expect", "").lower() == "100-continue"
        return self.command != "HEAD" and not chunked and not expects

    def _answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run the app to its whole answer: status, headers and body."""
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            captured["status"], captured["headers"] = status, headers
            return written.append

        chunks = self.server.app(environ, start_response)
        try:
            written.extend(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], b"".join(written)
