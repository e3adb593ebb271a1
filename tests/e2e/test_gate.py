"""Verification gates: bake time, CloudWatch alarms, approvers, minimum approvals, validated
Updates beside fire-and-forget signals, and gate timeouts decided by `on_timeout`."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from ecs_canary.models import DecisionInput, DeploymentResult, DeploymentStatus
from ecs_canary.unprocessed_update import execute_update
from tests.helpers import (
    describe,
    existing_service,
    guarding_alarm,
    status,
    temporal_cli,
    wait_for_stage,
    wait_until,
    worker_process,
)


async def _update(handle, name: str, by: str) -> DeploymentStatus:
    """The decision as starter.py sends it: again if no worker processed it, which a worker
    that has just started can do (ecs_canary.unprocessed_update)."""
    return await execute_update(handle, name, DecisionInput(by=by), DeploymentStatus)


async def test_an_alarm_during_bake_rejects_the_canary(worker, requests, ecs, cloudwatch, deploy):
    old_arn = existing_service(ecs, requests)
    guarding_alarm(cloudwatch, "myapp-5xx")
    request = requests.raw(verification={"bake_seconds": 600, "alarms": ["myapp-5xx"]})
    handle = await deploy(request)
    baking = await wait_for_stage(handle, "verification")
    await wait_until(lambda: _baking(handle))
    cloudwatch.set_alarm_state(
        AlarmName="myapp-5xx", StateValue="ALARM", StateReason="5xx above 5 for 1 minute"
    )
    result = await handle.result()

    assert baking.gate_open is False
    assert result.outcome == "rejected"
    assert (result.decision.via, result.decision.by) == ("alarm", "alarm:myapp-5xx")
    assert "5xx above 5" in result.decision.reason
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn


async def _baking(handle) -> bool:
    return (await status(handle)).bake_ends_at is not None


async def test_an_alarm_during_the_rolling_deploy_rolls_back(
    worker, requests, ecs, cloudwatch, emulator, deploy
):
    old_arn = existing_service(ecs, requests)
    guarding_alarm(cloudwatch, "myapp-5xx")
    handle = await deploy(requests.raw(image="nginx:slow", verification={"alarms": ["myapp-5xx"]}))
    await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    await handle.signal("approve", {"by": "alice"})
    await wait_for_stage(handle, "rolling_deploy", timeout=60)
    cloudwatch.set_alarm_state(AlarmName="myapp-5xx", StateValue="ALARM", StateReason="5xx up")
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()

    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "RolledBack"
    assert "myapp-5xx" in cause.message
    assert DeploymentResult.model_validate(cause.details[0]).outcome == "rolled_back"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["runningCount"]) == (old_arn, 2)


async def test_bake_without_alarm_promotes_with_no_human(worker, requests, ecs, cloudwatch, deploy):
    existing_service(ecs, requests)
    guarding_alarm(cloudwatch, "myapp-5xx")
    request = requests.raw(
        verification={"bake_seconds": 1, "alarms": ["myapp-5xx"], "require_approval": False}
    )
    handle = await deploy(request)
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert (result.decision.action, result.decision.via) == ("approve", "bake")
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn


async def test_approve_during_bake_is_refused_but_reject_is_accepted(worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    handle = await deploy(requests.raw(verification={"bake_seconds": 600}))
    await wait_for_stage(handle, "verification")
    await wait_until(lambda: _baking(handle))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await _update(handle, "approve", "alice")
    assert "baking" in str(refused.value.cause)
    decided = await _update(handle, "reject", "bob")
    assert decided.decision.action == "reject" and decided.decision.via == "update"
    result = await handle.result()
    assert result.outcome == "rejected"
    assert [(a.by, a.via, a.accepted) for a in result.attempts] == [("bob", "update", True)]


async def test_only_listed_approvers_decide(worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    request = requests.raw(verification={"approvers": ["alice", "carol"], "min_approvals": 2})
    handle = await deploy(request)
    await wait_for_stage(handle, "verification", gate_open=True)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await _update(handle, "approve", "mallory")
    assert "'mallory' may not decide" in str(refused.value.cause)
    await handle.signal("approve", {"by": "mallory"})
    await wait_until(lambda: _attempts(handle, 1))
    first = await _update(handle, "approve", "alice")
    assert first.gate_open and first.approvals == ["alice"]
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await _update(handle, "approve", "alice")
    assert "already approved" in str(twice.value.cause)
    second = await _update(handle, "approve", "carol")
    assert second.decision.action == "approve" and second.decision.approvals == ["alice", "carol"]
    result = await handle.result()

    assert result.outcome == "succeeded"
    audit = [(a.by, a.via, a.accepted) for a in result.attempts]
    assert audit == [
        ("mallory", "signal", False),
        ("alice", "update", True),
        ("carol", "update", True),
    ]
    assert "may not decide" in result.attempts[0].refusal


async def _attempts(handle, count: int) -> bool:
    return len((await status(handle)).attempts) >= count


async def test_the_cli_update_is_accepted_or_refused_at_once(client, worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    request = requests.raw(verification={"approvers": ["alice"]})
    handle = await deploy(request)
    await wait_for_stage(handle, "verification", gate_open=True)
    base = ["workflow", "update", "execute", "--workflow-id", handle.id, "--name", "approve"]

    refused = await temporal_cli(client, *base, "--input", '{"by": "eve"}')
    assert refused.code != 0 and "'eve' may not decide" in refused.out + refused.err
    accepted = await temporal_cli(client, *base, "--input", '{"by": "alice"}', "--output", "json")
    assert accepted.code == 0, accepted.err
    assert json.loads(accepted.out)["result"]["decision"]["by"] == "alice"
    assert (await handle.result()).outcome == "succeeded"


async def test_decisions_survive_a_worker_restart_mid_gate(
    client, task_queue, requests, ecs, tmp_path, deploy
):
    existing_service(ecs, requests)
    request = requests.raw(verification={"approvers": ["alice", "carol"], "min_approvals": 2})
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    with worker_process(address, task_queue, log):
        handle = await deploy(request)
        await wait_for_stage(handle, "verification", gate_open=True)
        await _update(handle, "approve", "alice")
    with worker_process(address, task_queue, log):
        after_restart = await status(handle)
        assert after_restart.approvals == ["alice"] and after_restart.gate_open
        await _update(handle, "approve", "carol")
        result = await handle.result()
    assert result.outcome == "succeeded"
    assert result.decision.approvals == ["alice", "carol"]
