"""Canary analysis's baseline on the emulator and a real Temporal dev server: created beside the
canary from the main service's task definition at the canary's count, tagged like it, in the
canary's target groups (or its own, weighted like the canary's), and never left behind: every
way a run ends deletes it and waits until ECS has it INACTIVE.

The tests look at both services once Verification starts (both are steady by then) and end
the run there, so they do not depend on the analysis's verdict; only the approved run waits
for the gate, with the emulator's traffic on so the judge has data."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError

from ecs_canary.models import DeploymentResult
from ecs_canary.names import RUN_ID_TAG, WORKFLOW_ID_TAG
from ecs_canary.text import load_balancing_lines
from tests.helpers import (
    analysis_settings,
    approve_at_gate,
    assert_failed_at_once,
    describe,
    failure_of,
    in_order,
    inventory,
    kill_hard,
    known_speeds,
    status,
    wait_for_stage,
    wait_until,
    worker_process,
)
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
    """myapp (2 tasks) behind `myapp-tg`; the rule forwards 100 to it, 0 to the canary's and
    the baseline's groups."""
    return myapp_behind_balancer(ecs, elbv2, requests, baseline=True)


def analysed(requests: Any, lb: Balancer | None = None, **verification: Any) -> dict[str, Any]:
    """A request with canary analysis for a canary of 1 task; weighted 10 % on the balancer's
    rule when `lb` is given."""
    canary: dict[str, Any] = {"desired_count": 1}
    analysis = analysis_settings()
    if lb is not None:
        canary["traffic"] = {
            "listener_rule_arn": lb.rule_arn,
            "canary_target_group_arn": lb.canary_group,
            "weight_percent": 10,
        }
        analysis = analysis_settings(baseline_target_group_arn=lb.baseline_group)
    return requests.raw(
        canary=canary, verification={"timeout_seconds": 600, "analysis": analysis, **verification}
    )


def tags_of(ecs: Any, service: str) -> dict[str, str]:
    arn = describe(ecs, service)["serviceArn"]
    return {tag["key"]: tag["value"] for tag in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}


def active(ecs: Any, *services: str) -> bool:
    return all(
        (found := describe(ecs, service)) and found["status"] == "ACTIVE" for service in services
    )


def gone(ecs: Any, *services: str) -> bool:
    return all(describe(ecs, service)["status"] == "INACTIVE" for service in services)


async def test_the_baseline_runs_the_old_version_beside_the_canary_in_its_groups(
    worker, requests, ecs, elbv2, emulator, lb, deploy
):
    emulator.admin.settings(traffic_rps=20)
    old_arn = describe(ecs, "myapp")["taskDefinition"]
    handle = await deploy(analysed(requests))
    gate = await wait_for_stage(handle, "verification")

    baseline, canary = describe(ecs, "myappBaseline"), describe(ecs, "myappCanary")
    assert (baseline["status"], baseline["taskDefinition"]) == ("ACTIVE", old_arn)
    assert baseline["desiredCount"] == baseline["runningCount"] == canary["desiredCount"] == 1
    assert (
        baseline["loadBalancers"]
        == canary["loadBalancers"]
        == describe(ecs, "myapp")["loadBalancers"]
    )
    assert tags_of(ecs, "myappBaseline") == tags_of(ecs, "myappCanary")
    assert set(tags_of(ecs, "myappBaseline")) >= {RUN_ID_TAG, WORKFLOW_ID_TAG}
    # Its task serves in the main group, beside the canary's and the primary's.
    assert task_addresses(ecs, "myappBaseline") <= targets(elbv2, lb.main_group)
    assert gate.baseline is not None
    assert (gate.baseline.service, gate.baseline.task_definition_arn) == ("myappBaseline", old_arn)
    assert (gate.baseline.running_count, gate.baseline.desired_count) == (1, 1)
    result = await approve_at_gate(handle)

    assert result.outcome == "succeeded" and result.baseline_deleted and result.canary_deleted
    assert gone(ecs, "myappBaseline", "myappCanary")
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn
    final = await status(handle)
    assert final.baseline is not None and final.baseline.deleted


async def test_weighted_the_baseline_gets_the_canarys_share_and_the_rule_is_put_back(
    worker, requests, ecs, elbv2, lb, deploy
):
    recorded = rule_actions(elbv2, lb.rule_arn)
    handle = await deploy(analysed(requests, lb))
    gate = await wait_for_stage(handle, "verification")

    assert forward_weights(elbv2, lb.rule_arn) == {
        lb.main_group: 80,
        lb.canary_group: 10,
        lb.baseline_group: 10,
    }
    assert gate.traffic is not None and gate.traffic.weights == {
        lb.main_group: 80.0,
        lb.canary_group: 10.0,
        lb.baseline_group: 10.0,
    }
    baseline = task_addresses(ecs, "myappBaseline")
    assert targets(elbv2, lb.baseline_group) == baseline
    assert not baseline & (targets(elbv2, lb.main_group) | targets(elbv2, lb.canary_group))
    revision = describe(ecs, "myapp")["taskDefinition"].rsplit("/", 1)[-1]
    shown = load_balancing_lines(gate.targets, gate.traffic, gate.scaling, gate.baseline)
    assert (
        "Baseline",
        f"myappBaseline on {revision}, 1/1 running; "
        "1 of 1 healthy targets in myapp-baseline-tg, ~10 %",
    ) in shown
    await handle.signal("reject", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == "rejected" and result.baseline_deleted
    assert rule_actions(elbv2, lb.rule_arn) == recorded
    assert gone(ecs, "myappBaseline", "myappCanary")


async def _ends(handle: Any, ending: str) -> DeploymentResult:
    """End the run in Verification as `ending` says (`cancelled`: it was cancelled already);
    its result (from `status` once cancelled)."""
    if ending == "reject":
        await handle.signal("reject", {"by": "alice"})
    elif ending == "cancel":
        await handle.cancel()
    if ending in ("cancel", "cancelled"):
        with pytest.raises(WorkflowFailureError) as cancelled:
            await handle.result()
        assert isinstance(cancelled.value.cause, CancelledError)
        final = (await status(handle)).result
        assert final is not None
        return final
    result: DeploymentResult = await handle.result()
    return result


@pytest.mark.parametrize("ending", ["reject", "cancel", "timeout"])
async def test_no_baseline_is_left_behind_in_verification(
    worker, requests, ecs, elbv2, lb, deploy, ending
):
    recorded = rule_actions(elbv2, lb.rule_arn)
    timeout = 1 if ending == "timeout" else 600
    handle = await deploy(analysed(requests, lb, timeout_seconds=timeout))
    if ending != "timeout":
        await wait_for_stage(handle, "verification")
    result = await _ends(handle, ending)

    assert result.outcome == {"reject": "rejected", "cancel": "cancelled"}.get(ending, "rejected")
    assert result.baseline_deleted and result.canary_deleted
    assert gone(ecs, "myappBaseline", "myappCanary")
    assert rule_actions(elbv2, lb.rule_arn) == recorded


@pytest.mark.parametrize("failing", ["myappCanary", "myappBaseline"])
async def test_no_baseline_is_left_behind_when_either_fails_to_start(
    worker, requests, ecs, emulator, lb, deploy, failing
):
    """The canary cannot pull its image, or the baseline's tasks crash: the run fails with
    ECS's reason and deletes both."""
    request = analysed(requests)
    if failing == "myappCanary":
        request["task_definition"]["containerDefinitions"][0]["image"] = "nginx:nopull"
    else:
        emulator.admin.inject_fault("myappBaseline", "crash", cluster=requests.seed["cluster"])
    error, result = await failure_of(await deploy(request))

    assert failing in error.message
    assert result.outcome == "failed" and result.baseline_deleted and result.canary_deleted
    assert gone(ecs, "myappBaseline", "myappCanary")


async def test_a_cancel_while_the_baseline_starts_deletes_both(
    worker, requests, ecs, emulator, lb, deploy
):
    emulator.admin.inject_fault("myappBaseline", "slow", cluster=requests.seed["cluster"])
    handle = await deploy(analysed(requests))
    await wait_until(lambda: active(ecs, "myappBaseline"))
    await handle.cancel()
    result = await _ends(handle, "cancelled")

    assert result.outcome == "cancelled" and result.baseline_deleted and result.canary_deleted
    assert [timing.stage.value for timing in result.stages] == ["canary_deploy"]
    assert gone(ecs, "myappBaseline", "myappCanary")


async def test_a_worker_killed_while_both_start_creates_each_once(
    client, task_queue, requests, ecs, emulator, lb, tmp_path, deploy
):
    """The worker dies while the canary's and the baseline's waits run; the next one carries
    on where the history says: neither service is created twice, and both go in the end."""
    emulator.admin.settings(task_start_seconds=1.5, task_stop_seconds=1.5)
    emulator.admin.reset_calls()
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    with worker_process(address, task_queue, log) as first:
        handle = await deploy(analysed(requests))
        await wait_until(lambda: active(ecs, "myappCanary", "myappBaseline"), timeout=30)
        kill_hard(first)
    known_speeds(emulator)  # slow only until the kill: what follows need not wait on ECS
    with worker_process(address, task_queue, log):
        await wait_for_stage(handle, "verification", timeout=90)
        await handle.signal("reject", {"by": "alice"})
        result = await handle.result()

    assert result.outcome == "rejected" and result.baseline_deleted and result.canary_deleted
    calls = emulator.admin.calls()["by_operation"]
    assert (calls.get("CreateService"), calls.get("DeleteService")) == (2, 2)
    assert gone(ecs, "myappBaseline", "myappCanary")


async def test_a_crashed_runs_leftover_baseline_and_canary_are_replaced(
    worker, requests, ecs, lb, deploy, logs, runs
):
    """A run terminated at its gate (as a crash of everything would leave it) runs no cleanup;
    the next run removes its canary and baseline before it creates its own."""
    crashed = await deploy(analysed(requests))
    await wait_for_stage(crashed, "verification")
    await crashed.terminate("crash")
    assert describe(ecs, "myappBaseline")["status"] == "ACTIVE"

    handle = await deploy(analysed(requests, timeout_seconds=1))
    result = await handle.result()

    assert result.outcome == "rejected" and result.baseline_deleted
    assert gone(ecs, "myappBaseline", "myappCanary")
    assert in_order(
        logs.lines(),
        [
            "Deleting service myappBaseline..",
            "Existing Service myappBaseline reached inactive state",
            "Creating Service myappBaseline with task definition",
        ],
    )


async def test_a_first_deployment_with_analysis_is_refused_before_any_change(
    worker, requests, ecs, emulator, deploy
):
    before = inventory(ecs)
    emulator.admin.reset_calls()
    error, result = await failure_of(await deploy(analysed(requests)))

    assert error.type == "Refused" and "service myapp does not exist yet" in error.message
    assert set(emulator.admin.calls()["by_operation"]) == {"DescribeServices"}
    assert inventory(ecs) == before
    assert result.baseline_deleted and result.task_definition_arn is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("placeholder", "need canary.traffic"),
        ("weight", "at most 50 with analysis"),
        ("no_group", "needs analysis.baseline_target_group_arn"),
    ],
)
async def test_a_bad_analysis_request_is_refused_at_validation(
    worker, requests, ecs, emulator, lb, deploy, change, why
):
    request = analysed(requests, lb)
    analysis = request["verification"]["analysis"]
    if change == "placeholder":
        request = analysed(requests)
        metric = request["verification"]["analysis"]["metrics"][0]
        metric["dimensions"] = {"TargetGroup": "{target_group}"}
    elif change == "weight":
        request["canary"]["traffic"]["weight_percent"] = 60
    else:
        del analysis["baseline_target_group_arn"]
    before = inventory(ecs)
    emulator.admin.reset_calls()

    message = await assert_failed_at_once(await deploy(request), "InvalidRequest")
    assert why in message
    assert emulator.admin.calls()["total"] == 0 and inventory(ecs) == before
