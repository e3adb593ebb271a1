"""A traffic-weighted canary: it registers only in its own target group, the listener rule
gives that group its weight for the verification stage, and the rule's actions are put back
exactly as they were on every way out (approve, reject, cancel)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from ecs_canary.models import DeploymentResult
from ecs_canary.text import load_balancing_lines
from tests.helpers import describe, status, wait_for_stage
from tests.helpers.load_balancers import (
    Balancer,
    forward_weights,
    myapp_behind_balancer,
    rule_actions,
    targets,
    task_addresses,
)

pytestmark = pytest.mark.usefixtures("fast_health_checks")


@pytest.fixture
def lb(ecs: Any, elbv2: Any, requests: Any) -> Balancer:
    """myapp (2 tasks) behind `myapp-tg`; the listener's default action and its rule forward
    100 to `myapp-tg` and 0 to `myapp-canary-tg`."""
    return myapp_behind_balancer(ecs, elbv2, requests)


def weighted(requests: Any, lb: Balancer, rule_arn: str, weight: int = 10) -> dict[str, Any]:
    traffic = {
        "listener_rule_arn": rule_arn,
        "canary_target_group_arn": lb.canary_group,
        "weight_percent": weight,
    }
    return requests.raw(canary={"desired_count": 1, "traffic": traffic})


def default_actions(elbv2: Any, lb: Balancer) -> list[dict[str, Any]]:
    listener = elbv2.describe_listeners(ListenerArns=[lb.listener_arn])["Listeners"][0]
    actions: list[dict[str, Any]] = listener["DefaultActions"]
    return actions


async def test_the_canary_gets_its_weight_during_the_gate_and_the_rule_is_restored_after(
    worker, requests, ecs, elbv2, lb, deploy
):
    recorded, listener_before = rule_actions(elbv2, lb.rule_arn), default_actions(elbv2, lb)
    handle = await deploy(weighted(requests, lb, lb.rule_arn))

    gate = await wait_for_stage(handle, "verification", gate_open=True)
    assert forward_weights(elbv2, lb.rule_arn) == {lb.main_group: 90, lb.canary_group: 10}
    assert gate.traffic is not None and gate.traffic.shifted
    assert gate.traffic.rule.actions == recorded
    assert load_balancing_lines(gate.targets, gate.traffic, gate.scaling) == [
        ("Targets", "1 of 1 healthy targets in myapp-canary-tg, ~10 %"),
        ("Traffic", "myapp-tg 90 %, myapp-canary-tg 10 % (the canary's weight)"),
    ]
    # The canary registered in its own group only.
    canary = task_addresses(ecs, "myappCanary")
    assert targets(elbv2, lb.canary_group) == canary and not canary & targets(elbv2, lb.main_group)
    await handle.signal("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert rule_actions(elbv2, lb.rule_arn) == recorded
    assert default_actions(elbv2, lb) == listener_before  # another rule of the listener
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    final = await status(handle)
    assert final.traffic is not None and not final.traffic.shifted


async def test_a_rejected_canary_puts_the_listeners_default_actions_back(
    worker, requests, ecs, elbv2, lb, deploy
):
    """The listener's default rule is changed with ModifyListener, and put back so."""
    before = default_actions(elbv2, lb)
    handle = await deploy(weighted(requests, lb, lb.default_rule_arn, weight=25))
    await wait_for_stage(handle, "verification", gate_open=True)
    assert forward_weights(elbv2, lb.default_rule_arn) == {lb.main_group: 75, lb.canary_group: 25}

    await handle.signal("reject", {"by": "alice", "reason": "latency up"})
    result = await handle.result()

    assert result.outcome == "rejected" and result.canary_deleted
    assert default_actions(elbv2, lb) == before
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


async def test_a_cancelled_run_puts_the_rule_back_before_deleting_the_canary(
    worker, requests, ecs, elbv2, lb, deploy, logs
):
    recorded = rule_actions(elbv2, lb.rule_arn)
    handle = await deploy(weighted(requests, lb, lb.rule_arn))
    await wait_for_stage(handle, "verification", gate_open=True)
    assert forward_weights(elbv2, lb.rule_arn)[lb.canary_group] == 10

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as cancelled:
        await handle.result()

    assert isinstance(cancelled.value.cause, CancelledError)
    final = await status(handle)
    assert isinstance(final.result, DeploymentResult) and final.result.canary_deleted
    assert rule_actions(elbv2, lb.rule_arn) == recorded
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    lines = logs.lines()
    restored = next(i for i, line in enumerate(lines) if line.startswith("Restoring the listener"))
    assert restored < lines.index("Deleting service myappCanary..")
