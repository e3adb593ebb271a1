"""Encrypted payloads end to end: with ECS_CANARY_PAYLOAD_KEY_FILE set for the worker and the
client, a deployment whose task definition carries a marker value in its `environment` runs to
completion, and the marker is nowhere in the Temporal server's SQLite file; the codec server
shows it decoded to `temporal workflow show --codec-endpoint` and, in a real browser, to the
Web UI started with `--ui-codec-endpoint`.

These tests need a server of their own: `temporal_env` keeps its database in memory, and its
UI has no codec endpoint. This module's dev server writes `temporal.db` in a temporary folder
and points its UI at a codec server (`python -m cli.codec_server`) with the same key file.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client

from ecs_canary.codec import KEY_FILE_ENV, EncryptionCodec, PayloadKeys, new_key
from ecs_canary.temporal import CLUSTER_SETTINGS, DATA_CONVERTER, connect
from ecs_canary.web_ui import run_link
from tests.helpers import (
    ROOT,
    DevServer,
    RequestFactory,
    Runs,
    existing_service,
    free_port,
    in_process_worker,
    start,
    temporal_cli,
    wait_until,
)

MARKER = f"ECS_CANARY_MARKER_5e1f{uuid.uuid4().hex[:12]}"
# Started without encryption, so the test can show the database file does hold history text.
CONTROL = f"ECS_CANARY_CONTROL_{uuid.uuid4().hex[:12]}"
READY_TIMEOUT = 30.0
CODEC_SERVER_MODULE = [sys.executable, "-m", "cli.codec_server"]
STARTER_CODEC_SERVER = [sys.executable, "starter.py", "codec-server"]


@dataclass
class EncryptedStack:
    server: DevServer
    codec_url: str
    ui_port: int
    client: Client  # encrypting, built by ecs_canary.temporal.connect() from the environment


@asynccontextmanager
async def codec_server(
    command: list[str], key_file: Path, *origins: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """The codec server as a process on a port of its choosing; yields it and its URL, read
    from the line it prints once it listens. Stopped with SIGTERM at the end."""
    cors = [arg for origin in origins for arg in ("--cors-origin", origin)]
    process = await asyncio.create_subprocess_exec(
        *command,
        "--port",
        "0",
        *cors,
        cwd=ROOT,
        env={**os.environ, KEY_FILE_ENV: str(key_file)},
        stdout=asyncio.subprocess.PIPE,  # its one line; refusals go to stderr, the test's
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)).decode()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, f"no address in {line!r}"
        yield process, found.group(0)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), READY_TIMEOUT)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EncryptedStack]:
    folder = tmp_path_factory.mktemp("encrypted")
    key_file = folder / "payload-keys.json"
    key_file.write_text(json.dumps({"active": "k2", "keys": {"k1": new_key(), "k2": new_key()}}))
    ui_port = free_port()
    async with codec_server(CODEC_SERVER_MODULE, key_file, f"http://127.0.0.1:{ui_port}") as (
        _,
        codec_url,
    ):
        server = DevServer(
            folder / "temporal.db",
            folder / "server.log",
            ui_port=ui_port,
            extra_args=["--ui-codec-endpoint", codec_url],
        )
        await server.start()
        try:
            client = await _connect_from_environment(server.address, key_file)
            yield EncryptedStack(server, codec_url, ui_port, client)
        finally:
            await server.stop()


async def _connect_from_environment(address: str, key_file: Path) -> Client:
    """The worker's and the starter's own path: `connect()` reads the key file setting."""
    with pytest.MonkeyPatch.context() as env:
        for name in CLUSTER_SETTINGS:
            env.delenv(name, raising=False)
        env.setenv("TEMPORAL_CONFIG_FILE", os.devnull)
        env.setenv("TEMPORAL_ADDRESS", address)
        env.setenv(KEY_FILE_ENV, str(key_file))
        client = await connect()
    assert isinstance(client.data_converter.payload_codec, EncryptionCodec)
    return client


def _request(requests: RequestFactory, value: str) -> dict[str, Any]:
    request = requests.raw(verification={"require_approval": False})
    container = request["task_definition"]["containerDefinitions"][0]
    container["environment"] = [{"name": "FEATURE_FLAGS", "value": value}]
    return request


def _stored(db_file: Path) -> bytes:
    """Everything the server wrote: the SQLite file and its journal (-wal, -journal)."""
    return b"".join(_bytes_of(path) for path in db_file.parent.glob(f"{db_file.name}*"))


def _bytes_of(path: Path) -> bytes:
    """A journal SQLite removes between the listing and the read held nothing new."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


@pytest.fixture
def rendered_logs() -> Iterator[io.StringIO]:
    """The process's log lines as its handler renders them (masking included)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


async def test_history_is_encrypted_at_rest_and_decodes_with_the_codec_server(
    stack, requests, ecs, task_queue, rendered_logs
):
    client = stack.client
    existing_service(ecs, requests)
    runs = Runs(client, task_queue)
    try:
        async with in_process_worker(client, task_queue):
            handle = await runs.start(_request(requests, MARKER))
            result = await handle.result()
        assert result.outcome == "succeeded"

        # The same server stores a run started without encryption in plain text: the file
        # read below is where histories live.
        plain = await Client.connect(stack.server.address, data_converter=DATA_CONVERTER)
        control = await start(plain, f"{task_queue}-unpolled", _request(requests, CONTROL))
        await wait_until(lambda: CONTROL.encode() in _stored(stack.server.db_file))
        await control.terminate("control run: only its start was needed")

        assert MARKER.encode() not in _stored(stack.server.db_file)
        assert MARKER not in rendered_logs.getvalue()

        run = ("workflow", "show", "--detailed", "-w", handle.id, "-r", handle.result_run_id)
        decoded = await temporal_cli(client, *run, "--codec-endpoint", stack.codec_url)
        assert decoded.code == 0, decoded.err
        assert f"environment[0].value: {MARKER}" in decoded.out
        encrypted = await temporal_cli(client, *run)
        assert encrypted.code == 0, encrypted.err
        assert MARKER not in encrypted.out
    finally:
        await runs.finish()  # replays the encrypted history with the client's codec


@pytest.fixture
async def ui_page() -> AsyncIterator[Any]:
    """A headless chromium page (scripts/browser.py), or a skip saying what is missing, as
    tests/e2e/test_web_ui.py does for its whole module."""
    pytest.importorskip(
        "playwright", reason="Web UI browser tests need playwright, in the dev extra: make venv"
    )
    from scripts import browser

    if not browser.CHROMIUM.is_file():
        pytest.skip(
            f"Web UI browser tests need chromium ({browser.CHROMIUM}): apt-get install chromium "
            "(CI installs it)"
        )
    async with browser.chromium_page() as page:
        yield page


async def test_the_web_ui_shows_the_input_decoded_by_the_codec_server(
    stack, requests, task_queue, ui_page, monkeypatch
):
    from playwright.async_api import expect

    from scripts.browser import TIMEOUT_MS

    monkeypatch.setenv("TEMPORAL_UI_URL", f"http://127.0.0.1:{stack.ui_port}")
    # No worker: the run's Input is its start event, all the page needs.
    handle = await start(stack.client, task_queue, _request(requests, MARKER))
    try:
        await ui_page.goto(run_link("default", handle.id, handle.result_run_id))
        # The browser asked the codec server (CORS) for the decoded input.
        await expect(ui_page.get_by_text(MARKER).first).to_be_visible(timeout=TIMEOUT_MS)
    finally:
        await handle.terminate("test over")
    assert MARKER.encode() not in _stored(stack.server.db_file)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(CODEC_SERVER_MODULE, id="python -m cli.codec_server"),
        pytest.param(STARTER_CODEC_SERVER, id="starter.py codec-server"),
    ],
)
async def test_the_codec_server_command_decodes_and_stops_on_sigterm(
    command: list[str], tmp_path: Path
):
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"active": "k1", "keys": {"k1": new_key()}}))
    codec = EncryptionCodec(PayloadKeys.load(key_file))
    encrypted = await codec.encode(DATA_CONVERTER.payload_converter.to_payloads([MARKER]))
    body = json_format.MessageToJson(Payloads(payloads=encrypted))

    async with codec_server(command, key_file) as (process, url):
        answer = await asyncio.to_thread(_post, f"{url}/decode", body)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), READY_TIMEOUT) == 0

    payloads = json_format.Parse(answer, Payloads()).payloads
    assert DATA_CONVERTER.payload_converter.from_payloads(list(payloads)) == [MARKER]


BAD_KEY_FILE = json.dumps({"active": "k9", "keys": {"k1": new_key()}})


@pytest.mark.parametrize(
    ("command", "key_file", "status", "says"),
    [
        pytest.param(
            CODEC_SERVER_MODULE, BAD_KEY_FILE, 2, "active key 'k9' is not in 'keys' (it has: k1)"
        ),
        pytest.param(CODEC_SERVER_MODULE, None, 2, f"codec-server needs {KEY_FILE_ENV}"),
        pytest.param(
            [sys.executable, "worker.py"], BAD_KEY_FILE, 1, "active key 'k9' is not in 'keys'"
        ),
    ],
    ids=["codec server, bad key file", "codec server, no key file", "worker, bad key file"],
)
async def test_a_process_without_a_usable_key_file_stops_at_once_saying_why(
    command: list[str], key_file: str | None, status: int, says: str, tmp_path: Path
):
    path = tmp_path / "keys.json"
    if key_file is not None:
        path.write_text(key_file)
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env={
            **os.environ,
            KEY_FILE_ENV: "" if key_file is None else str(path),
            "TEMPORAL_ADDRESS": "127.0.0.1:1",  # never reached
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), READY_TIMEOUT)
    assert process.returncode == status, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines


def _post(url: str, body: str) -> str:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()
