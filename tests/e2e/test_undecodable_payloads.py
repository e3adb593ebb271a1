"""No payload wedges a run. The worker encrypts payloads (ECS_CANARY_PAYLOAD_KEY_FILE); the
SDK decodes every payload of a workflow task before workflow code runs, so a signal encrypted
with a key the worker lacks, one whose authentication tag fails, or one in an encoding nobody
knows used to fail every retry of the task. Now such a signal is a refused attempt, such an
Update is refused with the reason, and the run goes on to be approved; only a start whose
input cannot be decoded fails, at once, with InvalidRequest. Each through `starter.py` (with
another key file than the worker's) and through the `temporal` CLI (raw payload metadata)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from ecs_canary.codec import KEY_FILE_ENV, PayloadKeys, new_key
from ecs_canary.names import workflow_id_for
from ecs_canary.temporal import encrypted_data_converter
from tests.helpers import (
    assert_failed_at_once,
    existing_service,
    status,
    temporal_cli,
    wait_for_stage,
)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "payload-keys.json"
    path.write_text(json.dumps({"active": "k1", "keys": {"k1": new_key()}}))
    return path


@pytest.fixture
def client(temporal_env: WorkflowEnvironment, key_file: Path) -> Client:
    """The worker's own client (and so the worker's codec) for this module's worker and runs:
    the runs' teardown replays their histories through it."""
    plain = temporal_env.client
    converter = encrypted_data_converter(PayloadKeys.load(key_file), worker=True)
    return Client(plain.service_client, namespace=plain.namespace, data_converter=converter)


@pytest.fixture
def stranger_keys(tmp_path: Path) -> Iterator[Path]:
    """A key file whose only key (k9) the worker does not have."""
    path = tmp_path / "other-keys.json"
    path.write_text(json.dumps({"active": "k9", "keys": {"k9": new_key()}}))
    yield path


async def _cli_signal(client: Client, wid: str, *meta: str, data: bytes = b"{}") -> None:
    """`temporal workflow signal --name approve` with a raw payload: `meta` as --input-meta."""
    metadata = [arg for pair in meta for arg in ("--input-meta", pair)]
    encoded = base64.b64encode(data).decode()
    sent = await temporal_cli(
        client,
        "workflow",
        "signal",
        "--workflow-id",
        wid,
        "--name",
        "approve",
        "--input",
        encoded,
        "--input-base64",
        *metadata,
    )
    assert sent.code == 0, sent.err


async def test_undecodable_decisions_are_refused_and_a_valid_approval_rolls_out(
    client, worker, requests, ecs, deploy, starter, stranger_keys: Path, key_file: Path
):
    existing_service(ecs, requests)
    handle = await deploy(requests.raw())
    await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    wid = handle.id

    encrypted = "encoding=binary/encrypted"
    await _cli_signal(client, wid, encrypted, "encryption-key-id=k9", data=b"x" * 40)
    await _cli_signal(client, wid, encrypted, "encryption-key-id=k1", data=b"y" * 40)
    await _cli_signal(client, wid, "encoding=binary/zstd")
    elsewhere = {**starter.env, KEY_FILE_ENV: str(stranger_keys)}
    signal = await starter.run("approve", wid, "--signal", env=elsewhere)
    assert signal.code == 0, signal.err
    update = await starter.run("approve", wid, env=elsewhere)
    unknown_key = "a payload was encrypted with key 'k9', which "
    assert update.code == 1
    assert update.err.startswith("approve refused: invalid decision: not JSON the workflow can")
    assert unknown_key in update.err

    gate = await status(handle)
    assert gate.gate_open and gate.decision is None
    refusals = [attempt.refusal or "" for attempt in gate.attempts]
    assert len(refusals) == 4 and not any(attempt.accepted for attempt in gate.attempts)
    assert unknown_key in refusals[0] and unknown_key in refusals[3]
    assert "encrypted with key 'k1' failed authentication" in refusals[1]
    assert "binary/zstd" in refusals[2]

    approved = await starter.run("approve", wid, env={**starter.env, KEY_FILE_ENV: str(key_file)})
    assert approved.code == 0, approved.err
    result = await handle.result()
    assert result.outcome == "succeeded" and result.decision is not None
    assert result.decision.by == "tester"


async def test_a_start_whose_input_cannot_be_decoded_fails_at_once(
    client, worker, requests, starter, runs, stranger_keys: Path
):
    request = requests.raw()
    wid = workflow_id_for(request["cluster"], request["service_name"])
    elsewhere = {**starter.env, KEY_FILE_ENV: str(stranger_keys)}
    started = await starter.run("deploy", starter.request_file(request), env=elsewhere)
    assert started.code == 0, started.err
    handle = await runs.track(wid)
    message = await assert_failed_at_once(handle, "InvalidRequest")
    assert "a payload was encrypted with key 'k9'" in message

    by_cli = await temporal_cli(
        client,
        "workflow",
        "start",
        "--type",
        "EcsCanaryDeployment",
        "--task-queue",
        runs.task_queue,
        "--workflow-id",
        f"{wid}-cli",
        "--input",
        base64.b64encode(b"not ciphertext").decode(),
        "--input-base64",
        "--input-meta",
        "encoding=binary/encrypted",
        "--input-meta",
        "encryption-key-id=k1",
    )
    assert by_cli.code == 0, by_cli.err
    from_cli = await runs.track(f"{wid}-cli")
    assert "failed authentication" in await assert_failed_at_once(from_cli, "InvalidRequest")
