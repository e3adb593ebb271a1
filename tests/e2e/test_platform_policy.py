"""The platform's policy (ECS_CANARY_POLICY_FILE) against the deployers' requests: a request
below it fails at once with `Refused`, naming the policy key, before any ECS call; a policy
tightened while a gate is open applies to the decisions that follow; a policy file the worker
cannot apply stops it at start. Requests and decisions go through `starter.py` and through the
`temporal` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ecs_canary.names import workflow_id_for
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.signing import KEYS_ENV, jwks
from tests.helpers import (
    ROOT,
    STARTER_USER,
    cli_start,
    existing_service,
    failed_with,
    request_file,
    temporal_cli,
    wait_for_stage,
)

POLICY = {
    "require_approval": True,
    "min_approvals": 2,
    "allow_timeout_approve": False,
    "approvers": ["alice", "bob"],
}


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The policy file of the worker in this process (which reads its environment)."""
    path = tmp_path / "policy.json"
    path.write_text("{}")
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    return path


async def test_a_request_below_the_policy_is_refused_before_any_ecs_call(
    client, worker, task_queue, requests, emulator, starter, runs, policy_file, tmp_path
):
    policy_file.write_text(json.dumps(POLICY))
    emulator.admin.reset_calls()
    no_gate = requests.raw(verification={"require_approval": False, "min_approvals": 2})
    followed = await starter.run("deploy", starter.request_file(no_gate), "--wait")
    requires = "(ECS_CANARY_POLICY_FILE) requires approval (require_approval)"
    assert followed.code == 1 and requires in followed.err + followed.out
    wid = workflow_id_for(no_gate["cluster"], no_gate["service_name"])
    refused = await failed_with(await runs.track(wid))
    assert (refused.type, refused.non_retryable) == ("Refused", True)
    assert requires in refused.message

    timeout_approves = requests.raw(
        verification={"on_timeout": "approve", "min_approvals": 2, "approvers": ["alice", "bob"]}
    )
    by_cli = await cli_start(
        client,
        task_queue,
        f"{wid}-cli",
        "--input-file",
        request_file(tmp_path, timeout_approves, "cli.json"),
    )
    assert by_cli.code == 0, by_cli.err
    refused = await failed_with(await runs.track(f"{wid}-cli"))
    assert refused.type == "Refused"
    assert 'does not allow on_timeout "approve" (allow_timeout_approve is false)' in (
        refused.message
    )
    assert emulator.admin.calls()["total"] == 0


async def test_a_policy_tightened_while_the_gate_is_open_applies_to_the_next_decision(
    client, worker, requests, ecs, deploy, starter, policy_file, tmp_path, monkeypatch
):
    existing_service(ecs, requests)
    made = await starter.run("keygen", str(tmp_path / STARTER_USER))
    assert made.code == 0, made.err
    (tmp_path / "approvers.json").write_text(jwks(json.loads(made.out)))
    monkeypatch.setenv(KEYS_ENV, str(tmp_path / "approvers.json"))
    handle = await deploy(requests.raw())
    gate = await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    assert gate.signed_decisions_required is False

    policy_file.write_text(json.dumps({"require_signed_decisions": True}))
    required = "a signed decision is required by the platform policy (require_signed_decisions"
    unsigned = await starter.run("approve", handle.id, "--by", "alice")
    assert unsigned.code == 1 and required in unsigned.err
    by_cli = await temporal_cli(
        client,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        handle.id,
        "--name",
        "approve",
        "--input",
        json.dumps({"by": "alice"}),
    )
    assert by_cli.code != 0 and required in by_cli.err
    signed = await starter.run("approve", handle.id, "--key", str(tmp_path / f"{STARTER_USER}.pem"))
    assert signed.code == 0, signed.err
    result = await handle.result()
    assert result.outcome == "succeeded"
    assert result.decision is not None and result.decision.signed
    # The first refusal came after the worker read the policy again (recorded); by then the
    # run knew it, so the Update's validator refused the second (never in the history).
    assert [(a.by, a.accepted) for a in result.attempts] == [("alice", False), (STARTER_USER, True)]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ('{"min_approval": 2}', "min_approval: Extra inputs are not permitted"),
        ('{"min_approvals": 0}', "min_approvals: Input should be greater than or equal to 1"),
        ('{"egress": {"allow": ["metadata"]}}', "'metadata' is not an address range (CIDR)"),
        ("[true]", "policy: Input should be a valid dictionary"),
        (
            '{"freeze_windows": [{"name": "weekend", "cron": "0 18 * * 5", '
            '"duration_seconds": 223200, "timezone": "Europe/Atlantis"}]}',
            "freeze_windows.0.recurring.timezone: Value error, unknown time zone",
        ),
        ("{not json", "is not JSON"),
    ],
)
def test_a_worker_whose_policy_it_cannot_apply_stops_at_start(
    document: str, problem: str, tmp_path: Path
):
    path = tmp_path / "policy.json"
    path.write_text(document)
    env = {"PATH": "/usr/bin:/bin", POLICY_FILE_ENV: str(path), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    stopped = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert stopped.returncode == 1
    assert (
        stopped.stderr.strip()
        .splitlines()[-1]
        .startswith(f"worker: the policy file {path} (ECS_CANARY_POLICY_FILE)")
    )
    assert problem in stopped.stderr
