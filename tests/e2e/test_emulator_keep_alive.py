"""The emulator keeps a client's connection for its next call (ecs_emulator.keep_alive): one
connection serves many ECS calls, a request body the app never read does not spill into the
next request, and what it cannot keep open is answered and closed as before."""

from __future__ import annotations

import http.client
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from ecs_emulator.admin_api import ADMIN_PREFIX

_ECS_TARGET = "AmazonEC2ContainerServiceV20141113.DescribeServices"


@contextmanager
def _connection(emulator: Any) -> Iterator[http.client.HTTPConnection]:
    url = urlparse(emulator.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


def _ask(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes = b"", **headers
) -> tuple[http.client.HTTPResponse, bytes]:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def test_one_connection_serves_many_ecs_calls(ecs, ecs_state):
    """boto3 (urllib3 underneath) opens one connection and never has to open it again."""
    seen = io.StringIO()
    handler = logging.StreamHandler(seen)
    pool_log = logging.getLogger("urllib3.connectionpool")
    level = pool_log.level
    pool_log.setLevel(logging.DEBUG)
    pool_log.addHandler(handler)
    try:
        for _ in range(20):
            found = ecs.describe_services(cluster=ecs_state["cluster"], services=["nothing"])
            assert found["failures"][0]["reason"] == "MISSING"
    finally:
        pool_log.removeHandler(handler)
        pool_log.setLevel(level)
    assert "Resetting dropped connection" not in seen.getvalue()
    assert seen.getvalue().count("Starting new HTTP connection") <= 1


def test_a_body_left_unread_does_not_reach_the_next_request(emulator, ecs_state):
    """The admin `info` route reads no body: the next request on the connection is still
    read from its own first line, and both come back whole, on the same socket."""
    with _connection(emulator) as connection:
        ignored = json.dumps({"padding": "x" * 5000}).encode()
        info, info_body = _ask(
            connection, "GET", f"{ADMIN_PREFIX}info", ignored, **{"Content-Type": "text/plain"}
        )
        socket = connection.sock
        described, described_body = _ask(
            connection,
            "POST",
            "/",
            json.dumps({"cluster": ecs_state["cluster"], "services": ["nothing"]}).encode(),
            **{
                "X-Amz-Target": _ECS_TARGET,
                "Content-Type": "application/x-amz-json-1.1",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ecs/"
                "aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        assert connection.sock is socket  # not reconnected
    assert info.status == 200 and json.loads(info_body)["cluster"] == ecs_state["cluster"]
    assert info.getheader("Connection") is None
    assert described.status == 200
    assert json.loads(described_body)["failures"][0]["reason"] == "MISSING"


def test_a_head_request_is_answered_and_its_connection_closed(emulator):
    with _connection(emulator) as connection:
        answered, body = _ask(connection, "HEAD", f"{ADMIN_PREFIX}info")
    assert answered.status in (200, 405)
    assert body == b""
    assert answered.getheader("Connection") == "close"
