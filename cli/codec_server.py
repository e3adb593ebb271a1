"""`starter.py codec-server` (also `python -m cli.codec_server`): Temporal's remote codec
protocol over HTTP, so that people allowed to read payloads see them decoded:

    temporal workflow show --workflow-id ID --codec-endpoint http://127.0.0.1:8081
    temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8081   (or the UI's
                                                 TEMPORAL_CODEC_ENDPOINT)

`POST /decode` and `POST /encode` take and return `{"payloads": [...]}`, each payload in
protobuf's JSON form (base64 `data` and metadata values). The Web UI calls the server from the
browser, so the UI's origin must be allowed with `--cors-origin` (preflight, `X-Namespace`).

It holds the keys (ECS_CANARY_PAYLOAD_KEY_FILE): it listens on 127.0.0.1 unless told otherwise,
refuses browsers from other origins, and never logs a payload. On any other address it refuses
to start without `--auth-keys JWKS`; with it, every encode and decode request needs a bearer
token for audience "ecs-canary-codec" signed by a key of that JWKS (cli/codec_auth.py). See
docs/payload-encryption.md.

The standard library's threading HTTP server is enough: the codec is a few microseconds of
AES per payload, and a person's browser or CLI is the only client.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from cli.codec_auth import CODEC_AUDIENCE, codec_caller, is_loopback
from cli.codec_options import configure
from cli.errors import CliError
from ecs_canary.codec import KEY_FILE_ENV, EncryptionCodec, PayloadKeyError, PayloadKeys
from ecs_canary.signing import KeysUnavailable, TokenRefusal, TrustedKeys, trusted_keys

# A decode request holds at most a page of history's payloads; Temporal caps one payload at
# 2 MB by default, and the UI decodes an event at a time.
MAX_BODY_BYTES = 32 * 1024 * 1024
# What the Web UI sends: JSON, the namespace it shows, and (when configured to pass it) the
# user's access token.
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"
PREFLIGHT_MAX_AGE_SECONDS = 600


class CodecServer(ThreadingHTTPServer):
    """The HTTP server and what its handlers share: the codec and the allowed origins."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        codec: EncryptionCodec,
        origins: Sequence[str],
        auth_keys: TrustedKeys | None = None,
    ) -> None:
        super().__init__(address, CodecHandler)
        self.codec = codec
        self.origins = frozenset(origin.rstrip("/") for origin in origins)
        # None: no token asked for (only on loopback, see run()).
        self.auth_keys = auth_keys

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class CodecHandler(BaseHTTPRequestHandler):
    server: CodecServer
    protocol_version = "HTTP/1.1"

    def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
        """A browser's preflight before it POSTs JSON with X-Namespace from the UI's origin."""
        if not self._origin_allowed(required=True):
            self._reply(HTTPStatus.FORBIDDEN, "origin not allowed (see --cors-origin)")
            return
        self._reply(
            HTTPStatus.NO_CONTENT,
            headers={
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            },
        )

    def do_GET(self) -> None:  # noqa: N802
        """`/health` for `make up` and compose's healthcheck; nothing else is served."""
        if self.path.rstrip("/") == "/health":
            self._reply(HTTPStatus.OK, "ok")
        else:
            self._reply(HTTPStatus.NOT_FOUND, "POST /encode or /decode")

    def do_POST(self) -> None:  # noqa: N802
        # The endpoint may sit under a path prefix (a proxy's /codec/decode).
        operation = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
        body = self._body()
        if body is None:
            return
        if operation not in ("encode", "decode"):
            self._reply(HTTPStatus.NOT_FOUND, "POST /encode or /decode")
            return
        if not self._authorized():
            return
        try:
            payloads = json_format.Parse(body, Payloads(), ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError) as err:
            self._reply(HTTPStatus.BAD_REQUEST, f'expected {{"payloads": [...]}}: {err}')
            return
        try:
            converted = [self._convert(operation, payload) for payload in payloads.payloads]
        except ValueError as err:  # a key id the file lacks, or a tampered payload
            self._reply(HTTPStatus.BAD_REQUEST, str(err))
            return
        answer = json_format.MessageToJson(Payloads(payloads=converted), indent=None)
        self._reply(HTTPStatus.OK, answer, content_type="application/json")

    def _body(self) -> bytes | None:
        """The request's body; None once refused. A refusal before the body is read closes
        the connection, so the unread body is not taken for the next request."""
        refusal: tuple[HTTPStatus, str] | None = None
        length = -1
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            refusal = (HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        # Browsers always send Origin on a cross-origin POST; the CLI sends none.
        if not self._origin_allowed(required=False):
            refusal = (HTTPStatus.FORBIDDEN, "origin not allowed (see --cors-origin)")
        elif refusal is None and not 0 <= length <= MAX_BODY_BYTES:
            refusal = (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_BODY_BYTES} bytes")
        if refusal is not None:
            self.close_connection = True
            self._reply(*refusal, headers={"Connection": "close"})
            return None
        return self.rfile.read(length)

    def _authorized(self) -> bool:
        """With --auth-keys, whether the request's bearer token proves who asks; refused (401)
        otherwise, or 503 when the keys cannot be read."""
        keys = self.server.auth_keys
        if keys is None:
            return True
        try:
            codec_caller(self.headers.get("Authorization"), keys)
        except TokenRefusal as refusal:
            self._reply(
                HTTPStatus.UNAUTHORIZED,
                f"not authorized: {refusal}",
                headers={"WWW-Authenticate": f'Bearer realm="{CODEC_AUDIENCE}"'},
            )
            return False
        except KeysUnavailable as err:
            self._reply(HTTPStatus.SERVICE_UNAVAILABLE, str(err))
            return False
        return True

    def _convert(self, operation: str, payload: Payload) -> Payload:
        codec = self.server.codec
        return codec.encrypt(payload) if operation == "encode" else codec.decrypt(payload)

    def _origin_allowed(self, required: bool) -> bool:
        origin = self.headers.get("Origin")
        if origin is None:
            return not required
        return origin.rstrip("/") in self.server.origins

    def _reply(
        self,
        status: HTTPStatus,
        text: str = "",
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        body = text.encode()
        self.send_response(status)
        origin = self.headers.get("Origin")
        if origin is not None and self._origin_allowed(required=True):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
        self.send_header("Vary", "Origin")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != HTTPStatus.NO_CONTENT:
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Failures only, and never a body: the UI asks on every page it shows."""
        if not str(code).isdigit() or int(code) >= 400:
            super().log_request(code, size)


def _shut_down_from_a_thread(server: ThreadingHTTPServer) -> None:
    """SIGTERM: leave serve_forever and close the socket, as Ctrl-C does. `shutdown` waits for
    serve_forever to return, so it cannot run in the thread that serves (the one the signal
    interrupts); it works before serve_forever starts too (that one then returns at once)."""
    threading.Thread(target=server.shutdown, name="codec-server-stop", daemon=True).start()


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; CliError (exit 2) without a usable key file."""
    try:
        keys = PayloadKeys.from_env()
    except PayloadKeyError as err:
        raise CliError(str(err), 2) from None
    if keys is None:
        raise CliError(f"codec-server needs {KEY_FILE_ENV}: the key file the worker uses", 2)
    if not is_loopback(args.host) and not args.auth_keys:
        raise CliError(
            f"codec-server --host {args.host} would decrypt payloads for anyone who reaches "
            "it: give --auth-keys JWKS (bearer tokens for audience ecs-canary-codec), or "
            "listen on 127.0.0.1",
            2,
        )
    try:
        auth_keys = trusted_keys(args.auth_keys) if args.auth_keys else None
    except KeysUnavailable as err:
        raise CliError(str(err), 2) from None
    codec = EncryptionCodec(keys)
    try:
        server = CodecServer((args.host, args.port), codec, args.cors_origin, auth_keys)
    except OSError as err:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    origins = ", ".join(sorted(server.origins)) or "none (CLI only)"
    auth = f"; bearer tokens from {args.auth_keys}" if args.auth_keys else ""
    # The handler goes in before the line a supervisor waits for (and may answer with SIGTERM).
    # It asks serve_forever to return instead of raising into the main thread: an exception
    # raised wherever that thread is (starting a request's thread, say) is caught and logged
    # by socketserver as a failed request, and the server would go on serving.
    signal.signal(signal.SIGTERM, lambda signum, frame: _shut_down_from_a_thread(server))
    try:
        # One line, flushed: `make up` and the tests wait for it (and read the port of --port 0).
        print(
            f"Codec server on {server.url} for {keys.describe()}; browser origins: {origins}{auth}"
        )
        sys.stdout.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main() -> None:
    args = configure(argparse.ArgumentParser(prog="python -m cli.codec_server")).parse_args()
    try:
        code = run(args)
    except CliError as err:
        print(err.message, file=sys.stderr)
        code = err.code
    sys.exit(code)


if __name__ == "__main__":
    main()
