"""Messages that reach a run before its first line runs: `temporal workflow signal-with-start`
delivers the signal in the same workflow task as the start, so the handlers must already see
the gate the request configures (`@workflow.init`), valid request or not."""

from __future__ import annotations

import json

from ecs_canary.models import DecisionInput, DeploymentStatus
from ecs_canary.names import workflow_id_for
from tests.helpers import (
    CLUSTER,
    assert_failed_at_once,
    cli_start,
    existing_service,
    inventory,
    request_file,
    wait_for_stage,
)


async def _signal_with_start(client, task_queue, runs, request: str, signal: str, by: str):
    """`temporal workflow signal-with-start` of the request file, with `signal` by `by`."""
    workflow_id = workflow_id_for(CLUSTER, "myapp")
    decision = json.dumps({"by": by})
    args = ["--input-file", request, "--signal-name", signal, "--signal-input", decision]
    started = await cli_start(client, task_queue, workflow_id, *args, command="signal-with-start")
    assert started.code == 0, started.err
    return await runs.track(workflow_id)


async def test_a_rejection_by_someone_not_listed_is_refused_before_the_run_starts(
    client, worker, task_queue, requests, ecs, tmp_path, runs
):
    existing_service(ecs, requests)
    request = request_file(tmp_path, requests.raw(verification={"approvers": ["alice", "bob"]}))
    handle = await _signal_with_start(client, task_queue, runs, request, "reject", "mallory")

    gate = await wait_for_stage(handle, "verification", gate_open=True)
    assert gate.decision is None
    (refused,) = gate.attempts
    assert (refused.action, refused.by, refused.via, refused.accepted) == (
        "reject",
        "mallory",
        "signal",
        False,
    )
    assert "'mallory' may not decide" in refused.refusal
    approved = await handle.execute_update(
        "approve", DecisionInput(by="alice"), result_type=DeploymentStatus
    )
    assert approved.decision.action == "approve" and approved.decision.by == "alice"
    result = await handle.result()

    assert result.outcome == "succeeded"
    audit = [(a.action, a.by, a.via, a.accepted) for a in result.attempts]
    assert audit == [("reject", "mallory", "signal", False), ("approve", "alice", "update", True)]


async def test_an_invalid_request_with_a_signal_still_fails_at_once(
    client, worker, task_queue, requests, ecs, emulator, tmp_path, runs
):
    """The signal finds no gate (the request never configured one) and is dropped; the run
    fails in its first workflow task with InvalidRequest and calls ECS not once."""
    before = inventory(ecs)
    emulator.admin.reset_calls()
    bad = requests.raw(canary={"desired_count": 0})
    handle = await _signal_with_start(
        client, task_queue, runs, request_file(tmp_path, bad), "approve", "alice"
    )

    message = await assert_failed_at_once(handle, "InvalidRequest")
    assert message.startswith("Invalid deployment request") and "desired_count" in message
    assert emulator.admin.calls()["total"] == 0
    assert inventory(ecs) == before
