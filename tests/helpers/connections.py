"""Every TCP connection this process attempts, recorded where sockets connect: a test proves
"no connection was attempted" to an address without ever sending traffic off loopback.

`socket.socket.connect` is where both the blocking sockets (httpx's sync transport, boto3)
and asyncio's connections (httpx's async transport) reach the network. Within `recording`, a
connection to loopback goes ahead; any other is recorded and refused before a packet leaves,
so even a broken egress check cannot reach 169.254.169.254 from a test.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


class ConnectionLog:
    """The addresses connected to (host, port), loopback included, in order."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []

    def to(self, host: str) -> list[tuple[str, int]]:
        return [attempt for attempt in self.attempts if attempt[0] == host]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectionLog]:
    log = ConnectionLog()
    connect = socket.socket.connect

    def recorded(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host, port = address[0], address[1]
            log.attempts.append((host, port))
            if not _loopback(host):
                raise ConnectionRefusedError(f"tests never connect off loopback ({host})")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", recorded)
    yield log
