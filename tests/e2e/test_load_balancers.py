"""Deployments of a service behind a target group: the canary joins the main service's group
(as in Harness) and gets its task count's share of the traffic, steady state includes healthy
targets, and a canary or a rollout whose tasks fail health checks ends with ECS's reason."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_canary.text import load_balancing_lines
from tests.helpers import (
    CLUSTER,
    describe,
    failure_of,
    wait_for_stage,
    wait_until,
)
from tests.helpers.load_balancers import (
    healthy_targets,
    myapp_behind_balancer,
    only_targets_of,
    task_addresses,
)

pytestmark = pytest.mark.usefixtures("fast_health_checks")


@pytest.fixture
def main_group(ecs: Any, elbv2: Any, requests: Any) -> str:
    """myapp (2 tasks at nginx:1.26) behind the `myapp-tg` target group, all targets healthy."""
    return myapp_behind_balancer(ecs, elbv2, requests).main_group


async def test_the_canary_takes_its_share_of_the_main_group_and_the_rollout_ends_healthy(
    worker, requests, ecs, elbv2, main_group, deploy, logs
):
    old = task_addresses(ecs, "myapp")
    handle = await deploy(requests.raw())  # no loadBalancers: the canary takes the main's

    gate = await wait_for_stage(handle, "verification", gate_open=True)
    (count,) = gate.targets
    assert (count.target_group_arn, count.tasks, count.healthy, count.healthy_in_group) == (
        main_group,
        1,
        1,
        3,
    )
    assert load_balancing_lines(gate.targets, gate.traffic, gate.scaling) == [
        ("Targets", "1 of 3 healthy targets in myapp-tg, ~33 %")
    ]
    assert task_addresses(ecs, "myappCanary") <= healthy_targets(elbv2, main_group)
    assert "Service myappCanary has 1 of 3 healthy targets in myapp-tg, ~33 %" in logs.lines()
    await handle.signal("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == "succeeded"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["runningCount"]) == (result.task_definition_arn, 3)
    new = task_addresses(ecs, "myapp")
    assert len(new) == 3 and not new & old
    # The old tasks' targets drained; only the new deployment's are registered, all healthy.
    await wait_until(lambda: only_targets_of(elbv2, main_group, ecs, "myapp"), timeout=10)
    assert "Service myapp has 3 of 3 healthy targets in myapp-tg, ~100 %" in logs.lines()


async def test_a_canary_failing_health_checks_fails_fast_and_is_deleted(
    worker, requests, ecs, elbv2, main_group, deploy
):
    old_arn = describe(ecs, "myapp")["taskDefinition"]
    handle = await deploy(requests.raw(image="nginx:unhealthy"))
    error, result = await failure_of(handle)

    assert error.type == "TasksFailed"
    assert f"Task failed ELB health checks in (target-group {main_group})" in error.message
    assert result.outcome == "failed" and result.canary_deleted
    assert [timing.stage.value for timing in result.stages] == ["canary_deploy"]
    (canary_deploy,) = result.stages
    assert canary_deploy.ended_at is not None
    assert (canary_deploy.ended_at - canary_deploy.started_at).total_seconds() < 30
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"]) == (old_arn, 2)
    assert healthy_targets(elbv2, main_group) == task_addresses(ecs, "myapp")


async def test_a_rollout_failing_health_checks_is_rolled_back(
    worker, requests, ecs, elbv2, emulator, main_group, deploy
):
    old_arn = describe(ecs, "myapp")["taskDefinition"]
    handle = await deploy(requests.raw())
    await wait_for_stage(handle, "verification", gate_open=True)
    emulator.admin.inject_fault("myapp", "unhealthy", cluster=CLUSTER)  # the next deployment
    await handle.signal("approve", {"by": "alice"})
    error, result = await failure_of(handle)

    assert error.type == "RolledBack"
    assert "failed ELB health checks" in error.message
    assert result.outcome == "rolled_back"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], main["runningCount"]) == (old_arn, 2, 2)
    await wait_until(lambda: only_targets_of(elbv2, main_group, ecs, "myapp"), timeout=10)
