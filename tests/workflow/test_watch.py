"""The watch after the rollout (`rolling.watch_seconds`) with fake activities on the
time-skipping server: an alarm that fires rolls the service back (`AlarmFired`), a quiet watch
succeeds, and a cancel during the watch rolls back too.

While a (fake) activity runs the test server does not skip time, so a watch that must end by
its timer is short; one that an alarm or a cancel ends is long."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, CancelledError

from ecs_canary.models import AlarmFiring, DeploymentStatus, Outcome
from ecs_canary.scaling import ScalableTarget
from tests.helpers import wait_until
from tests.workflow.conftest import request
from tests.workflow.fakes import NEW_ARN, OLD_ARN, FakeEcs, running_service
from tests.workflow.reading import details_of, failure_of, result_of, status_of, until

STAGES = ["canary_deploy", "verification", "canary_delete", "rolling_deploy", "watch"]


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    return fake_ecs


def _watched(seconds: float, **rolling: Any) -> dict[str, Any]:
    """Approved by the bake (no person), with the verification alarm `myapp-5xx`."""
    return request(
        verification={"require_approval": False, "alarms": ["myapp-5xx"]},
        rolling={"watch_seconds": seconds, **rolling},
    )


async def _watching(handle: Any) -> DeploymentStatus:
    await until(handle, "watch")
    return await status_of(handle)


def _rollout_and_rollback(fake: FakeEcs) -> None:
    rollout, rollback = fake.inputs("update_service")
    assert (rollout.task_definition_arn, rollback.task_definition_arn) == (NEW_ARN, OLD_ARN)
    assert rollback.desired_count == 3
    assert rollback.deployment_configuration == {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }


async def test_an_alarm_during_the_watch_rolls_back_with_alarm_fired(existing, start):
    handle = await start(_watched(3600))
    watching = await _watching(handle)
    started = watching.stages[-1].started_at
    assert watching.watch_ends_at == started + timedelta(seconds=3600)
    existing.alarm = AlarmFiring(name="myapp-5xx", reason="5xx above 5 for 1 minute")
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "AlarmFired"
    assert "alarm myapp-5xx went into ALARM after the rollout" in error.message
    result = result_of(error)
    assert result.outcome == Outcome.ROLLED_BACK and result.canary_deleted
    assert [t.stage.value for t in result.stages] == [*STAGES, "rollback"]
    _rollout_and_rollback(existing)
    assert (await status_of(handle)).watch_ends_at is None


async def test_a_quiet_watch_succeeds_and_watches_its_own_alarms(existing, start):
    # The watch ends in real time: its alarm watch (a fake activity) runs meanwhile, and the
    # test server skips no time while an activity runs.
    handle = await start(_watched(0.3, watch_alarms=["myapp-latency"]))
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    assert [t.stage.value for t in result.stages] == STAGES
    (rollout,) = existing.inputs("update_service")
    assert rollout.task_definition_arn == NEW_ARN
    (found,) = existing.inputs("find_alarms")
    assert found.alarms == ["myapp-latency"]
    assert existing.inputs("watch_alarms")[-1].alarms == ["myapp-latency"]
    assert (await status_of(handle)).watch_ends_at is None


async def test_a_cancel_during_the_watch_rolls_back(existing, start):
    handle = await start(_watched(3600))
    await _watching(handle)
    details = await details_of(handle)
    assert "**Watch:** alarms myapp-5xx until " in details
    assert "an alarm or a cancel rolls the service back" in details
    await handle.cancel()
    error = await failure_of(handle)

    assert isinstance(error, CancelledError)
    final = await status_of(handle)
    assert final.result is not None and final.result.outcome == Outcome.CANCELLED
    assert [t.stage.value for t in final.stages] == [*STAGES, "rollback"]
    _rollout_and_rollback(existing)


async def test_alarms_that_cannot_be_found_fail_the_run_before_any_change(existing, start):
    existing.failing.add("find_alarms")
    error = await failure_of(await start(_watched(600)))

    assert isinstance(error, ApplicationError) and error.type == "AccessDenied"
    assert existing.inputs("register_task_definition") == []
    assert existing.inputs("create_service") == []
    assert existing.inputs("update_service") == []


async def test_auto_scaling_is_the_services_own_again_during_the_watch(existing, start):
    """A watch may last hours: the hold on auto scaling ends with the rolling deploy, and a
    rollback from the watch does not touch it again."""
    existing.scalable_target = ScalableTarget(
        resource_id="service/ecs-canary/myapp", min_capacity=1, max_capacity=10
    )
    handle = await start(_watched(3600))
    watching = await _watching(handle)
    assert watching.scaling is not None and not watching.scaling.suspended
    held, restored = existing.inputs("set_suspended_state")
    assert held.suspended.dynamic_scaling_in and not restored.suspended.dynamic_scaling_in
    existing.alarm = AlarmFiring(name="myapp-5xx", reason="5xx above 5 for 1 minute")
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "AlarmFired"
    assert len(existing.inputs("set_suspended_state")) == 2
    _rollout_and_rollback(existing)


async def _alarm_watch_answered(handle: Any) -> bool:
    """The run's history holds the alarm watch's answer: the workflow has seen the alarm."""
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_completed_event_attributes"):
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled in await _scheduled_ids(handle, "watch_alarms"):
                return True
    return False


async def _scheduled_ids(handle: Any, activity_type: str) -> set[int]:
    return {
        event.event_id
        async for event in handle.fetch_history_events()
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity_type
    }


async def test_a_pause_stops_the_watch_and_an_alarm_meanwhile_rolls_back_at_the_resume(
    existing, start
):
    """A paused run decides nothing by itself: the alarm is seen, the rollback waits for the
    resume, and the watch's deadline moves on by the time paused."""
    handle = await start(_watched(3600))
    watching = await _watching(handle)
    pause = {"by": "alice", "reason": "incident elsewhere"}
    paused = await handle.execute_update("pause", pause, result_type=DeploymentStatus)
    assert paused.paused is not None
    existing.alarm = AlarmFiring(name="myapp-5xx", reason="5xx above 5 for 1 minute")
    await wait_until(lambda: _alarm_watch_answered(handle))

    held = await status_of(handle)
    assert held.stage.value == "watch" and held.result is None
    # The clock stopped at the pause: the deadline moved on by the time paused until the alarm.
    assert held.watch_ends_at is not None and watching.watch_ends_at is not None
    moved_on = held.watch_ends_at - watching.watch_ends_at
    assert timedelta(0) <= moved_on < timedelta(minutes=1)
    assert len(existing.inputs("update_service")) == 1  # the rollout only
    await handle.execute_update("resume", {"by": "alice"})
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "AlarmFired"
    _rollout_and_rollback(existing)
