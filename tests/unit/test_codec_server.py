"""The codec server (cli/codec_server.py) in this process, on a free port: Temporal's remote codec
protocol as the `temporal` CLI and the Web UI speak it, CORS for the UI's origin, refusals."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from cli.codec_auth import CODEC_AUDIENCE, is_loopback
from cli.codec_server import CodecServer
from ecs_canary.codec import ENCODING, KEY_FILE_ENV, EncryptionCodec, PayloadKeys, new_key
from ecs_canary.signing import trusted_keys
from ecs_canary.temporal import DATA_CONVERTER
from tests.helpers import ROOT
from tests.helpers.signing import Approver, write_jwks

UI_ORIGIN = "http://127.0.0.1:8233"
MARKER = "ECS_CANARY_MARKER_server"


@pytest.fixture(scope="module")
def keys() -> PayloadKeys:
    return PayloadKeys.parse(json.dumps({"active": "k1", "keys": {"k1": new_key()}}))


@pytest.fixture(scope="module")
def server(keys: PayloadKeys) -> Iterator[CodecServer]:
    running = CodecServer(("127.0.0.1", 0), EncryptionCodec(keys), [UI_ORIGIN + "/"])
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def _call(
    server: CodecServer, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, dict[str, str], str]:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=10)
    data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    connection.request(
        method, path, body=data, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read().decode())
    connection.close()
    return answer


def _wire(*values: Any) -> dict[str, Any]:
    """Payloads as the CLI and the UI send them: protobuf's JSON form."""
    payloads = Payloads(payloads=DATA_CONVERTER.payload_converter.to_payloads(list(values)))
    return json_format.MessageToDict(payloads)


def _values(text: str) -> list[Any]:
    payloads = json_format.Parse(text, Payloads()).payloads
    return DATA_CONVERTER.payload_converter.from_payloads(list(payloads))


def test_encode_then_decode_round_trips(server: CodecServer) -> None:
    status, _, encoded = _call(server, "POST", "/encode", _wire({"value": MARKER}, 3))
    assert status == 200
    assert MARKER not in encoded
    for payload in json_format.Parse(encoded, Payloads()).payloads:
        assert payload.metadata["encoding"] == ENCODING

    status, headers, decoded = _call(server, "POST", "/decode", encoded)
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert _values(decoded) == [{"value": MARKER}, 3]


def test_decode_under_a_path_prefix_with_a_query(server: CodecServer, keys: PayloadKeys) -> None:
    # The Web UI 2.54 asks `/decode?preserveStorageRefs=true`; a proxy may add a prefix.
    encrypted = EncryptionCodec(keys).encrypt(DATA_CONVERTER.payload_converter.to_payload("x"))
    body = json_format.MessageToJson(Payloads(payloads=[encrypted]))
    status, _, decoded = _call(server, "POST", "/codec/decode?preserveStorageRefs=true", body)
    assert status == 200 and _values(decoded) == ["x"]


def test_unencrypted_payloads_decode_unchanged(server: CodecServer) -> None:
    status, _, decoded = _call(server, "POST", "/decode", _wire("plain"))
    assert status == 200 and _values(decoded) == ["plain"]


def test_the_web_ui_preflight_is_answered_for_its_origin(server: CodecServer) -> None:
    status, headers, _ = _call(
        server,
        "OPTIONS",
        "/decode",
        Origin=UI_ORIGIN,
        Access_Control_Request_Method="POST",
        Access_Control_Request_Headers="content-type,x-namespace",
    )
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "X-Namespace" in headers["Access-Control-Allow-Headers"]

    status, headers, decoded = _call(
        server, "POST", "/decode", _wire(1), Origin=UI_ORIGIN, X_Namespace="default"
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == UI_ORIGIN


def test_other_origins_are_refused(server: CodecServer) -> None:
    evil = "http://evil.example"
    status, headers, _ = _call(server, "OPTIONS", "/decode", Origin=evil)
    assert status == 403 and "Access-Control-Allow-Origin" not in headers
    status, headers, text = _call(server, "POST", "/decode", _wire(1), Origin=evil)
    assert status == 403 and "--cors-origin" in text
    assert headers["Connection"] == "close"  # the unread body is not the next request


@pytest.mark.parametrize(
    ("path", "body", "status", "says"),
    [
        ("/decode", "not json", 400, 'expected {"payloads": [...]}'),
        ("/decode", {"payloads": "nope"}, 400, 'expected {"payloads": [...]}'),
        ("/other", {"payloads": []}, 404, "POST /encode or /decode"),
    ],
)
def test_bad_requests(server: CodecServer, path: str, body: Any, status: int, says: str) -> None:
    answer = _call(server, "POST", path, body)
    assert (answer[0], says in answer[2]) == (status, True), answer


def test_a_payload_under_an_unknown_key_is_a_clear_400(server: CodecServer) -> None:
    other = PayloadKeys.parse(json.dumps({"active": "k0", "keys": {"k0": new_key()}}))
    encrypted = EncryptionCodec(other).encrypt(DATA_CONVERTER.payload_converter.to_payload("x"))
    body = json_format.MessageToJson(Payloads(payloads=[encrypted]))
    status, _, text = _call(server, "POST", "/decode", body)
    assert status == 400 and "encrypted with key 'k0'" in text


def test_health(server: CodecServer) -> None:
    assert _call(server, "GET", "/health")[:1] == (200,)
    assert _call(server, "GET", "/")[0] == 404


# Beyond loopback: bearer tokens


@pytest.fixture(scope="module")
def codec_user() -> Approver:
    return Approver("idp-codec", "RS256")


@pytest.fixture(scope="module")
def guarded(
    keys: PayloadKeys, codec_user: Approver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CodecServer]:
    """A server that asks for tokens (bound to 127.0.0.1 all the same: tests stay local)."""
    jwks_file = write_jwks(tmp_path_factory.mktemp("codec") / "jwks.json", codec_user)
    running = CodecServer(
        ("127.0.0.1", 0), EncryptionCodec(keys), [UI_ORIGIN], trusted_keys(str(jwks_file))
    )
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def _codec_token(user: Approver, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "alice", "aud": CODEC_AUDIENCE, "iat": now, "exp": now + 300, **claims}
    return jwt.encode(body, user.private_key, algorithm=user.alg, headers={"kid": user.kid})


def test_beyond_loopback_every_request_needs_a_token_for_the_codec(
    guarded: CodecServer, codec_user: Approver
) -> None:
    wire = _wire("x")
    status, headers, text = _call(guarded, "POST", "/encode", wire)
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="ecs-canary-codec"'
    assert text == "not authorized: an Authorization: Bearer <JWT> header is required"
    stranger = Approver("idp-codec", "RS256")  # the right kid, another key
    for token, why in (
        (_codec_token(codec_user, aud="ecs-canary"), "not for audience 'ecs-canary-codec'"),
        (_codec_token(stranger), "Signature verification failed"),
        (_codec_token(codec_user, exp=int(time.time()) - 120), "Signature has expired"),
    ):
        status, _, text = _call(guarded, "POST", "/encode", wire, Authorization=f"Bearer {token}")
        assert status == 401 and why in text
    bearer = f"Bearer {_codec_token(codec_user)}"
    status, _, encoded = _call(guarded, "POST", "/encode", wire, Authorization=bearer)
    assert status == 200
    status, _, decoded = _call(guarded, "POST", "/decode", encoded, Authorization=bearer)
    assert (status, _values(decoded)) == (200, ["x"])


def test_the_starter_refuses_to_serve_beyond_loopback_without_auth_keys(tmp_path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"active": "k1", "keys": {"k1": new_key()}}))
    refused = subprocess.run(
        [sys.executable, "starter.py", "codec-server", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        env={**os.environ, KEY_FILE_ENV: str(key_file)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(
        "codec-server --host 0.0.0.0 would decrypt payloads for anyone who reaches it: give "
        "--auth-keys JWKS"
    )
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")
