"""What a deployment does on a bad day: fail fast with ECS's reason, roll back, never orphan
the canary, one deployment per service, retry what is transient."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import CancelledError, WorkflowAlreadyStartedError

from ecs_canary.names import WORKFLOW_TYPE
from tests.helpers import (
    CLUSTER,
    approve_at_gate,
    cli_start,
    describe,
    existing_service,
    failure_of,
    request_file,
    status,
    wait_for_stage,
)


async def test_a_canary_that_cannot_pull_fails_fast(worker, requests, ecs, deploy):
    """The canary's wait ends at the stopped tasks' own reason, not at its stage timeout."""
    old_arn = existing_service(ecs, requests)
    handle = await deploy(requests.raw(image="nginx:nopull"))
    error, result = await failure_of(handle)

    assert error.type == "TasksFailed"
    assert "CannotPullContainerError" in error.message
    assert result.outcome == "failed" and result.canary_deleted
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"]) == (old_arn, 2)


async def _rollout_fails(deploy, emulator, request: dict, fault: str):
    """Deploy `request` and, once the canary is steady, make the service's next deployment (the
    rolling deploy) hit `fault`; approve, and return how the run failed."""
    handle = await deploy(request)
    await wait_for_stage(handle, "verification", gate_open=True)
    emulator.admin.inject_fault(request["service_name"], fault, cluster=CLUSTER)
    await handle.signal("approve", {"by": "alice"})
    return await failure_of(handle)


async def test_a_failing_rolling_deploy_rolls_back(worker, requests, ecs, emulator, deploy):
    old_arn = existing_service(ecs, requests)
    error, result = await _rollout_fails(deploy, emulator, requests.raw(), "nopull")

    assert error.type == "RolledBack"
    assert "CannotPullContainerError" in error.message
    assert result.outcome == "rolled_back"
    assert result.previous_task_definition_arn == old_arn
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], main["runningCount"]) == (old_arn, 2, 2)
    assert len(main["deployments"]) == 1
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


async def test_a_service_whose_rollback_target_is_gone_stops_before_the_gate(
    worker, requests, ecs, deploy
):
    """ECS cannot point a service back at a deregistered task definition, so a rollout that
    could not be rolled back is refused before anyone is asked to verify the canary."""
    old_arn = existing_service(ecs, requests)
    ecs.deregister_task_definition(taskDefinition=old_arn)
    handle = await deploy(requests.raw())
    error, result = await failure_of(handle)

    assert error.type == "PreviousTaskDefinitionInactive"
    assert old_arn in error.message and "INACTIVE" in error.message
    assert result.outcome == "failed" and result.canary_deleted
    assert result.decision is None
    assert [timing.stage.value for timing in result.stages] == ["canary_deploy"]
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], len(main["deployments"])) == (
        old_arn,
        2,
        1,
    )


async def test_a_failed_first_deployment_removes_the_service(
    worker, requests, ecs, emulator, deploy
):
    error, result = await _rollout_fails(deploy, emulator, requests.raw(service="billing"), "crash")

    assert result.outcome == "failed"
    assert "Essential container in task exited" in error.message
    assert describe(ecs, "billing")["status"] == "INACTIVE"


async def test_throttled_ecs_calls_are_retried(worker, requests, ecs, emulator, deploy):
    existing_service(ecs, requests)
    emulator.admin.settings(throttle_rate=0.3)
    try:
        handle = await deploy(
            requests.raw(verification={"timeout_seconds": 600, "on_timeout": "approve"})
        )
        result = await approve_at_gate(handle)
        throttled = emulator.admin.calls()["throttled"]
    finally:
        emulator.admin.settings(throttle_rate=0.0)
    assert result.outcome == "succeeded"
    assert throttled > 0


async def test_cancel_at_the_gate_removes_the_canary(worker, requests, ecs, deploy):
    old_arn = existing_service(ecs, requests)
    handle = await deploy(requests.raw())
    await wait_for_stage(handle, "verification", gate_open=True)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()

    assert isinstance(caught.value.cause, CancelledError)
    assert (await handle.describe()).status.name == "CANCELED"
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn
    assert (await status(handle)).outcome == "cancelled"


async def test_cancel_during_the_rolling_deploy_restores_main(worker, requests, ecs, deploy):
    old_arn = existing_service(ecs, requests)
    handle = await deploy(requests.raw(image="nginx:slow-start"))
    await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    await handle.signal("approve", {"by": "alice"})
    await wait_for_stage(handle, "rolling_deploy")
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()

    assert isinstance(caught.value.cause, CancelledError)
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], main["runningCount"]) == (old_arn, 2, 2)
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


async def test_a_missing_cluster_fails_before_anything_is_created(worker, requests, ecs, deploy):
    families_before = ecs.list_task_definitions()["taskDefinitionArns"]
    handle = await deploy(requests.raw(cluster="no-such-cluster"))
    error, result = await failure_of(handle)

    assert error.type == "ClusterNotFoundException"
    assert ecs.list_task_definitions()["taskDefinitionArns"] == families_before
    assert result.task_definition_arn is None


async def test_a_second_deployment_of_a_service_is_refused(
    client, worker, task_queue, requests, ecs, tmp_path, deploy
):
    existing_service(ecs, requests)
    first = await deploy(requests.raw())
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(
            WORKFLOW_TYPE,
            requests.raw(),
            id=first.id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
    request = request_file(tmp_path, requests.raw())
    conflict = ["--input-file", request, "--id-conflict-policy", "Fail"]
    shown = await cli_start(client, task_queue, first.id, *conflict)
    # The CLI (1.9.1) answers a conflicting start by showing the run already going: no second
    # deployment starts.
    assert first.result_run_id in shown.out, shown
    listed = [w async for w in client.list_workflows(f"WorkflowId='{first.id}'")]
    assert [w.run_id for w in listed if w.status.name == "RUNNING"] == [first.result_run_id]
    await first.signal("reject", {"by": "alice"})
    assert (await first.result()).outcome == "rejected"
    # A finished run's id can be used again.
    again = await deploy(requests.raw(verification={"timeout_seconds": 1}))
    assert (await again.result()).outcome == "rejected"
