"""The workflow's decisions with fake activities on the time-skipping server: what it calls, in
what order, and how the run ends, for each path through the four stages."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, CancelledError

from ecs_canary.models import AlarmFiring, Outcome
from ecs_canary.names import WORKFLOW_TYPE
from tests.workflow.conftest import request
from tests.workflow.fakes import NEW_ARN, OLD_ARN, FakeEcs, running_service
from tests.workflow.reading import failure_of, result_of, status_of, until


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    return fake_ecs


async def test_approved_canary_is_promoted_in_stage_order(existing, start):
    handle = await start(request())
    await until(handle, "verification", gate_open=True)
    await handle.execute_update("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED and result.canary_deleted
    assert [t.stage.value for t in result.stages] == [
        "canary_deploy",
        "verification",
        "canary_delete",
        "rolling_deploy",
    ]
    (update,) = existing.inputs("update_service")
    assert (update.service, update.task_definition_arn, update.desired_count) == (
        "myapp",
        NEW_ARN,
        3,
    )
    assert [d.service for d in existing.inputs("delete_service")] == ["myappCanary"]


async def test_a_refused_signal_before_run_is_recorded_and_changes_nothing(existing, start):
    """Signal-with-start delivers the signal before run(): the gate must already know the
    request's approvers."""
    body = request(verification={"approvers": ["alice", "bob"]})
    handle = await start(body, start_signal="reject", start_signal_args=[{"by": "mallory"}])
    await until(handle, "verification", gate_open=True)

    attempts = (await status_of(handle)).attempts
    assert [(a.by, a.accepted) for a in attempts] == [("mallory", False)]
    assert "'mallory' may not decide" in (attempts[0].refusal or "")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", {"by": "mallory"})
    assert "'mallory' may not decide" in str(refused.value.cause)
    await handle.execute_update("approve", {"by": "bob"})
    assert (await handle.result()).outcome == Outcome.SUCCEEDED


async def test_an_approval_before_the_canary_is_steady_is_refused(existing, start):
    handle = await start(request(), start_signal="approve", start_signal_args=[{"by": "alice"}])
    await until(handle, "verification", gate_open=True)
    (attempt,) = (await status_of(handle)).attempts
    assert not attempt.accepted and "not steady yet" in (attempt.refusal or "")
    await handle.signal("reject", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.REJECTED


async def test_an_invalid_request_fails_the_run_at_once_without_calls(fake_ecs, start):
    handle = await start(request(service_name="my app"))
    error = await failure_of(handle)
    assert isinstance(error, ApplicationError) and error.type == "InvalidRequest"
    assert "may contain only letters" in error.message
    assert fake_ecs.calls == []


async def test_a_start_without_any_input_fails_as_an_invalid_request(
    fake_ecs, time_skipping, fake_worker
):
    handle = await time_skipping.client.start_workflow(
        WORKFLOW_TYPE, id="ecs-canary/no-input", task_queue=fake_worker
    )
    error = await failure_of(handle)
    assert isinstance(error, ApplicationError) and error.type == "InvalidRequest"
    assert fake_ecs.calls == []


async def test_an_alarm_during_the_gate_rejects_the_canary(existing, start):
    existing.alarm = AlarmFiring(name="HighErrors", reason="Threshold Crossed")
    handle = await start(request(verification={"alarms": ["HighErrors"]}))
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None
    assert (result.decision.via, result.decision.by) == ("alarm", "alarm:HighErrors")
    assert existing.inputs("update_service") == [] and result.canary_deleted


async def test_a_gate_nobody_decides_times_out_into_on_timeout(existing, start):
    handle = await start(request(verification={"timeout_seconds": 6 * 3600}))
    result = await handle.result()  # the server skips the six hours
    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None and result.decision.via == "timeout"


@pytest.mark.abandons_activity
async def test_a_rejection_during_the_canary_wait_stops_it_and_deletes_the_canary(existing, start):
    existing.waits[("myappCanary", "canary_deploy")] = "hang"
    handle = await start(request())
    await existing.hanging.wait()
    await handle.signal("reject", {"by": "alice", "reason": "wrong image"})
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED and result.canary_deleted
    assert "verification" not in [t.stage.value for t in result.stages]
    assert existing.inputs("update_service") == []


async def test_a_failed_rollout_rolls_back_to_the_recorded_service(existing, start):
    existing.waits[("myapp", "rolling_deploy")] = "fail"
    handle = await start(request(verification={"require_approval": False}))
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "RolledBack"
    assert result_of(error).outcome == Outcome.ROLLED_BACK
    rollout, rollback = existing.inputs("update_service")
    assert (rollout.task_definition_arn, rollback.task_definition_arn) == (NEW_ARN, OLD_ARN)
    assert rollback.deployment_configuration == {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }


async def test_a_failed_rollback_says_where_the_service_was_left(existing, start):
    existing.waits[("myapp", "rolling_deploy")] = "fail"
    existing.waits[("myapp", "rollback")] = "fail"
    handle = await start(request(verification={"require_approval": False}))
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "RollbackFailed"
    assert "rollback of service myapp failed: 2 task(s)" in error.message
    assert f"service myapp was left ACTIVE on task definition {OLD_ARN}" in error.message
    assert "The rolling deploy had failed because: 2 task(s)" in error.message
    assert result_of(error).outcome == Outcome.FAILED


@pytest.mark.abandons_activity
async def test_a_cancel_during_the_rolling_deploy_rolls_back(existing, start):
    existing.waits[("myapp", "rolling_deploy")] = "hang"
    handle = await start(request(verification={"require_approval": False}))
    await existing.hanging.wait()
    await handle.cancel()
    error = await failure_of(handle)

    assert isinstance(error, CancelledError)
    final = await status_of(handle)
    assert final.outcome == Outcome.CANCELLED
    # The cancellation carries no result; the status query does.
    assert final.result is not None and final.result.outcome == Outcome.CANCELLED
    assert final.result.canary_deleted and final.result.previous_task_definition_arn == OLD_ARN
    rollout, rollback = existing.inputs("update_service")
    assert (rollout.task_definition_arn, rollback.task_definition_arn) == (NEW_ARN, OLD_ARN)
    assert [t.stage.value for t in final.stages][-1] == "rollback"
    # The rollout's wait is cancelled, not abandoned: it hears so with its next heartbeat.
    await asyncio.wait_for(existing.hang_cancelled.wait(), timeout=10)


async def test_a_first_deployment_whose_rollout_fails_removes_the_new_service(fake_ecs, start):
    fake_ecs.waits[("myapp", "rolling_deploy")] = "fail"
    handle = await start(request(verification={"require_approval": False}))
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "TasksFailed"
    assert [d.service for d in fake_ecs.inputs("delete_service")] == ["myappCanary", "myapp"]
    assert fake_ecs.inputs("update_service") == []


async def test_an_inactive_rollback_target_stops_before_the_gate(existing, start):
    existing.task_definition_status = "INACTIVE"
    handle = await start(request())
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError)
    assert error.type == "PreviousTaskDefinitionInactive"
    assert existing.inputs("update_service") == [] and result_of(error).canary_deleted


@pytest.mark.abandons_activity
async def test_an_inactive_rollback_target_ends_the_canarys_wait_at_once(existing, start):
    """The check runs beside the wait for the canary's tasks: its answer does not wait for a
    canary that never becomes steady (were it made after the wait, this run would never end),
    and no wait is left behind: the wait's activity is dropped before it is scheduled, as here
    where the check answers within the same workflow task, or cancelled."""
    existing.task_definition_status = "INACTIVE"
    existing.waits[("myappCanary", "canary_deploy")] = "hang"
    handle = await start(request())
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError)
    assert error.type == "PreviousTaskDefinitionInactive"
    assert result_of(error).canary_deleted and existing.inputs("update_service") == []
    events = (await handle.fetch_history()).events
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    cancelled = [
        scheduled[event.activity_task_cancel_requested_event_attributes.scheduled_event_id]
        for event in events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    ]
    assert cancelled == [name for name in scheduled.values() if name == "wait_for_steady_state"]
