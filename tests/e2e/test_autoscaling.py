"""Auto scaling held still: a main service with a scalable target has its dynamic scaling
suspended for the rolling deploy and its recorded SuspendedState put back after success and
rollback; a desired count outside the target's range is refused before anything changes;
`rolling.same_as_running_instances` keeps the count the autoscaler set; the canary never gets
a scalable target."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ecs_canary.scaling import SuspendedState
from tests.helpers import (
    CLUSTER,
    REGION,
    describe,
    existing_service,
    failure_of,
    inventory,
    status,
    wait_for_stage,
    wait_stable,
    wait_until,
)
from tests.helpers.load_balancers import scalable_target, suspended_state

# As the service's owner left it: scheduled scaling suspended, dynamic scaling on.
RECORDED = {"ScheduledScalingSuspended": True}
HELD = SuspendedState(dynamic_scaling_in=True, dynamic_scaling_out=True, scheduled_scaling=True)


@pytest.fixture
def autoscaling(ecs_state: dict[str, Any]) -> Any:
    return boto3.client("application-autoscaling", region_name=REGION)


def state_of(autoscaling: Any, service: str = "myapp") -> SuspendedState | None:
    found = suspended_state(autoscaling, service)
    return None if found is None else SuspendedState.from_api(found)


async def _rolling_deploy_holds_scaling(
    handle: Any, autoscaling: Any, emulator: Any, fault: str | None = None
) -> None:
    """Approve with slow task starts (the rollout failing with `fault`), and see the dynamic
    scaling suspended while the new tasks start, in ECS and in `status`."""
    await wait_for_stage(handle, "verification", gate_open=True)
    assert suspended_state(autoscaling, "myappCanary") is None  # the canary never gets one
    emulator.admin.settings(task_start_seconds=1.5)
    if fault is not None:
        emulator.admin.inject_fault("myapp", fault, cluster=CLUSTER)  # the next deployment
    await handle.signal("approve", {"by": "alice"})
    await wait_until(lambda: state_of(autoscaling) == HELD, timeout=20)
    current = await status(handle)
    assert current.stage.value == "rolling_deploy"
    assert current.scaling is not None and current.scaling.suspended


async def test_dynamic_scaling_is_suspended_for_the_rollout_and_put_back_after_it(
    worker, requests, ecs, autoscaling, emulator, deploy
):
    existing_service(ecs, requests)
    scalable_target(autoscaling, min_capacity=1, max_capacity=5, **RECORDED)
    handle = await deploy(requests.raw())

    await _rolling_deploy_holds_scaling(handle, autoscaling, emulator)
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert state_of(autoscaling) == SuspendedState.from_api(RECORDED)
    assert describe(ecs, "myapp")["desiredCount"] == 3
    final = await status(handle)
    assert final.scaling is not None and not final.scaling.suspended


async def test_a_rolled_back_rollout_puts_the_scaling_back_too(
    worker, requests, ecs, autoscaling, emulator, deploy
):
    old_arn = existing_service(ecs, requests)
    scalable_target(autoscaling, min_capacity=1, max_capacity=5, **RECORDED)
    handle = await deploy(requests.raw())

    await _rolling_deploy_holds_scaling(handle, autoscaling, emulator, fault="nopull")
    error, result = await failure_of(handle)

    assert (error.type, result.outcome) == ("RolledBack", "rolled_back")
    assert state_of(autoscaling) == SuspendedState.from_api(RECORDED)
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"]) == (old_arn, 2)


async def test_a_count_outside_the_autoscaling_range_is_refused_before_any_change(
    worker, requests, ecs, autoscaling, emulator, deploy
):
    existing_service(ecs, requests)
    scalable_target(autoscaling, min_capacity=1, max_capacity=2)
    before = inventory(ecs)
    emulator.admin.reset_calls()
    handle = await deploy(requests.raw(desired=3))
    error, result = await failure_of(handle)
    calls = emulator.admin.calls()["by_operation"]

    assert error.type == "Refused"
    assert "desiredCount 3 is outside the auto scaling range of service myapp [1, 2]" in (
        error.message
    )
    assert result.outcome == "failed" and result.task_definition_arn is None
    assert calls == {"DescribeServices": 1}
    assert inventory(ecs) == before
    assert state_of(autoscaling) == SuspendedState()


async def test_same_as_running_instances_keeps_the_count_the_autoscaler_set(
    worker, requests, ecs, autoscaling, deploy
):
    existing_service(ecs, requests)
    scalable_target(autoscaling, min_capacity=1, max_capacity=2)  # 3 would be out of range
    handle = await deploy(requests.raw(rolling={"same_as_running_instances": True}))
    await wait_for_stage(handle, "verification", gate_open=True)
    # The autoscaler scales out while the canary is verified.
    ecs.update_service(cluster=CLUSTER, service="myapp", desiredCount=4)
    wait_stable(ecs, "myapp")
    await handle.signal("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == "succeeded"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], main["runningCount"]) == (
        result.task_definition_arn,
        4,
        4,
    )
