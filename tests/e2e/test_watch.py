"""The watch after the rollout, end to end (real Temporal dev server, the ECS emulator and its
CloudWatch): an alarm set to ALARM during the watch rolls the service back to what it was, and
an alarm the watch could not find stops the run before anything changes."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import (
    describe,
    existing_service,
    failure_of,
    guarding_alarm,
    inventory,
    wait_for_stage,
)


async def test_an_alarm_during_the_watch_rolls_the_service_back(
    worker, requests, ecs, cloudwatch, deploy
):
    old_arn = existing_service(ecs, requests)  # 2 tasks
    before = describe(ecs, "myapp")["deploymentConfiguration"]
    guarding_alarm(cloudwatch, "myapp-5xx")
    request = requests.raw(
        verification={"require_approval": False},
        rolling={"watch_seconds": 600, "watch_alarms": ["myapp-5xx"]},
    )
    handle = await deploy(request)
    watching = await wait_for_stage(handle, "watch", timeout=120)
    assert watching.watch_ends_at == watching.stages[-1].started_at + timedelta(seconds=600)
    rolled_out = describe(ecs, "myapp")
    assert (rolled_out["taskDefinition"], rolled_out["desiredCount"]) == (
        watching.task_definition_arn,
        3,
    )
    cloudwatch.set_alarm_state(
        AlarmName="myapp-5xx", StateValue="ALARM", StateReason="5xx above 5 for 1 minute"
    )
    error, result = await failure_of(handle)

    assert error.type == "AlarmFired"
    assert "alarm myapp-5xx went into ALARM after the rollout: 5xx above 5" in error.message
    assert result.outcome == "rolled_back" and result.canary_deleted
    assert [t.stage.value for t in result.stages][-2:] == ["watch", "rollback"]
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], main["runningCount"]) == (old_arn, 2, 2)
    assert main["deploymentConfiguration"] == before
    assert len(main["deployments"]) == 1


async def test_a_watch_alarm_that_does_not_exist_stops_the_run_before_any_change(
    worker, requests, ecs, deploy
):
    existing_service(ecs, requests)
    untouched = inventory(ecs)
    request = requests.raw(rolling={"watch_seconds": 600, "watch_alarms": ["myapp-typo"]})
    error, result = await failure_of(await deploy(request))

    assert error.type == "AlarmNotFound" and "myapp-typo" in error.message
    assert result.outcome == "failed" and result.task_definition_arn is None
    assert inventory(ecs) == untouched
