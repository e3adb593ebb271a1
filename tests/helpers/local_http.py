"""Local HTTP servers for tests: one on 127.0.0.1 and a free port, served from a thread, and a
webhook receiver that records every notification posted to it.

The receiver answers each request with whatever `respond` says (200 unless a test changes it,
e.g. 500 for a minute), and records the request either way, so a test sees every attempt.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve `handler` on 127.0.0.1 and a free port until the block ends; yields the base URL
    (`http://127.0.0.1:<port>`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    serving_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving_thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        serving_thread.join()


class QuietHandler(BaseHTTPRequestHandler):
    """A test server's request handler: no access log on stderr, and one way to answer."""

    def answer(self, status: int, body: bytes, content_type: str | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it: the answer it gave, and what was sent."""

    path: str
    headers: dict[str, str]  # names in lower case
    body: Any  # the JSON document
    answered: int


@dataclass
class WebhookReceiver:
    base: str = ""
    received: list[Received] = field(default_factory=list)
    # The status to answer a request with; a test may swap it at any time.
    respond: Callable[[Received], int] = lambda _request: 200

    def url(self, path: str = "/hook") -> str:
        return f"{self.base}{path}"

    def answered(self, status: int) -> list[Received]:
        return [request for request in self.received if request.answered == status]

    def events(self, status: int = 200) -> list[str]:
        """The `event` of each JSON notification answered with `status`, in arrival order."""
        return [
            request.body["event"]
            for request in self.answered(status)
            if isinstance(request.body, dict) and "event" in request.body
        ]


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Receive(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen = Received(
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=json.loads(raw) if raw else None,
                answered=0,
            )
            status = receiver.respond(seen)
            receiver.received.append(replace(seen, answered=status))
            self.answer(status, b"ok" if status < 300 else b"receiver unavailable")

    with serving(Receive) as base:
        receiver.base = base
        yield receiver
