"""The codec server's command-line options, for `starter.py codec-server` and
`python -m cli.codec_server` alike.

Apart from the server (`cli.codec_server`): `starter.py` builds its whole parser for every
command, and what the server imports (protobuf's JSON form, the payload codec, JWT checks) only
`codec-server` needs.
"""

from __future__ import annotations

import argparse

DEFAULT_PORT = 8081


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs --auth-keys)",
    )
    parser.add_argument(
        "--auth-keys",
        metavar="JWKS",
        help="require a bearer token (aud ecs-canary-codec) signed by a key of this JWKS file "
        "or https URL on every encode and decode request",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="URL",
        help="a Web UI origin allowed to call it from the browser, e.g. http://127.0.0.1:8233 "
        "(repeat for more)",
    )
    return parser


def add_arguments(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `codec-server` on the starter's subcommands."""
    return configure(
        subparsers.add_parser(
            "codec-server",
            help="decode encrypted payloads for the temporal CLI and the Web UI",
            description="Serve Temporal's remote codec protocol (POST /encode, /decode) with the "
            "keys of ECS_CANARY_PAYLOAD_KEY_FILE, for `temporal --codec-endpoint` and the Web "
            "UI's codec endpoint (see docs/payload-encryption.md).",
        )
    )
