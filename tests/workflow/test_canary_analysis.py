"""Canary analysis in Verification: the intervals, back to back, and what each verdict does to
the gate, with the judge activity faked (`fake_analysis.FakeJudge`) on the time-skipping
server. The judge's statistics and the CloudWatch reads are tested on their own."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from ecs_canary.models import DeploymentResult, DeploymentStatus, Outcome
from ecs_canary.traffic import ListenerRule, listener_arn_of
from tests.workflow.conftest import request
from tests.workflow.fake_analysis import FakeJudge
from tests.workflow.fakes import FakeEcs, running_service
from tests.workflow.reading import status_of

INTERVAL = 300.0
INTERVALS = 3


def analysis(**changes: Any) -> dict[str, Any]:
    """`verification.analysis`: three 5-minute intervals of two metrics."""
    metrics = [
        {
            "name": "errors",
            "namespace": "ECS/Emulator",
            "metric_name": "Errors",
            "dimensions": {"ClusterName": "{cluster}", "ServiceName": "{service}"},
            "stat": "Sum",
            "critical": True,
        },
        {
            "name": "p99-latency",
            "namespace": "ECS/Emulator",
            "metric_name": "Latency",
            "dimensions": {"ClusterName": "{cluster}", "ServiceName": "{service}"},
            "stat": "p99",
        },
    ]
    settings = {"interval_seconds": INTERVAL, "intervals": INTERVALS, "metrics": metrics}
    return {**settings, **changes}


def with_analysis(require_approval: bool = True, **changes: Any) -> dict[str, Any]:
    return request(
        verification={"require_approval": require_approval, "analysis": analysis(**changes)}
    )


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    """myapp runs: the baseline is made of its task definition."""
    fake_ecs.services["myapp"] = running_service("myapp")
    return fake_ecs


async def analysing(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentStatus:
    """The status once the first interval's timer runs (real time: nothing to skip yet)."""
    async with asyncio.timeout(30):
        while True:
            current = await status_of(handle)
            if current.analysis is not None and current.analysis.state == "running":
                return current
            await asyncio.sleep(0.05)


async def after_intervals(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, DeploymentResult], count: int
) -> DeploymentStatus:
    """Move the clock on, interval by interval, until `count` intervals were judged."""
    async with asyncio.timeout(30):
        while True:
            current = await status_of(handle)
            assert current.analysis is not None
            if len(current.analysis.intervals) >= count:
                return current
            await env.sleep(INTERVAL / 10)


async def gate_open(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentStatus:
    async with asyncio.timeout(30):
        while not (current := await status_of(handle)).gate_open:
            await asyncio.sleep(0.05)
    return current


async def test_a_passing_analysis_approves_by_itself_without_require_approval(
    existing, fake_judge: FakeJudge, start
):
    result = await (await start(with_analysis(require_approval=False))).result()

    assert result.outcome == Outcome.SUCCEEDED
    assert result.decision is not None and result.decision.via == "bake"
    assert result.decision.reason == (
        "the bake time passed and the canary analysis passed (score 100), with no alarm"
    )
    assert [judged.index for judged in fake_judge.inputs] == [1, 2, 3]
    # The intervals tile time: each starts where the one before ended.
    windows = [(judged.started_at, judged.ended_at) for judged in fake_judge.inputs]
    assert all(end - begin == timedelta(seconds=INTERVAL) for begin, end in windows)
    assert all(windows[i][1] == windows[i + 1][0] for i in range(INTERVALS - 1))
    first = fake_judge.inputs[0]
    assert first.canary == {"{service}": "myappCanary", "{cluster}": "ecs-canary"}
    assert first.baseline == {"{service}": "myappBaseline", "{cluster}": "ecs-canary"}


async def test_a_passing_analysis_opens_the_gate_and_approvals_wait_for_it(
    existing, start, time_skipping
):
    handle = await start(with_analysis())
    running = await analysing(handle)
    assert running.analysis is not None and running.analysis.intervals == []
    assert running.analysis.baseline_service == "myappBaseline"

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", {"by": "alice"})
    assert "the canary analysis is still running" in str(refused.value.cause)
    await handle.signal("approve", {"by": "bob"})  # a signal's refusal is recorded
    await after_intervals(time_skipping, handle, INTERVALS)
    opened = await gate_open(handle)

    assert opened.analysis is not None
    assert (opened.analysis.state, opened.analysis.score, opened.analysis.verdict) == (
        "passed",
        100,
        "pass",
    )
    assert [i.index for i in opened.analysis.intervals] == [1, 2, 3]
    refusal = next(a for a in opened.attempts if not a.accepted)
    assert refusal.by == "bob" and "analysis is still running" in (refusal.refusal or "")
    await handle.execute_update("approve", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.SUCCEEDED


async def test_a_failed_interval_rejects_at_once_naming_the_score_and_the_metrics(
    existing, fake_judge: FakeJudge, start
):
    fake_judge.script[2] = "fail"
    handle = await start(with_analysis())
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED and result.canary_deleted
    assert result.decision is not None
    assert (result.decision.via, result.decision.by) == ("analysis", "analysis")
    assert result.reason == (
        "reject (analysis) by analysis: canary analysis interval 2 of 3: score 40, fail "
        "(marginal_score 75); not passing: p99-latency high (+48.0%, p=0.0001)"
    )
    assert [judged.index for judged in fake_judge.inputs] == [1, 2]
    final = await status_of(handle)
    assert final.analysis is not None
    assert (final.analysis.state, final.analysis.verdict) == ("failed", "fail")
    assert len(final.analysis.intervals) == 2
    assert existing.inputs("update_service") == []


async def test_a_marginal_analysis_goes_to_a_person_with_on_marginal_gate(
    existing, fake_judge: FakeJudge, start, time_skipping
):
    """Even with require_approval false: marginal is for a person to decide."""
    fake_judge.script[3] = "marginal"
    handle = await start(with_analysis(require_approval=False))
    await after_intervals(time_skipping, handle, INTERVALS)
    opened = await gate_open(handle)

    assert opened.analysis is not None
    assert (opened.analysis.state, opened.analysis.score) == ("marginal", 80)
    await handle.signal("reject", {"by": "alice", "reason": "latency up 48 %"})
    result = await handle.result()
    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None and result.decision.by == "alice"


async def test_a_marginal_analysis_rejects_with_on_marginal_reject(
    existing, fake_judge: FakeJudge, start
):
    fake_judge.script[3] = "marginal"
    result = await (await start(with_analysis(on_marginal="reject"))).result()

    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None and result.decision.via == "analysis"
    assert result.reason is not None
    assert "canary analysis ended marginal (interval 3 of 3: score 80, marginal" in result.reason
    assert "(pass_score 95)" in result.reason and result.reason.endswith("on_marginal: reject")


async def test_an_interval_that_cannot_be_judged_fails_the_analysis_and_rejects(
    existing, fake_judge: FakeJudge, start
):
    fake_judge.script[1] = "error"
    handle = await start(with_analysis(require_approval=False))
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED
    assert result.reason is not None and result.reason.endswith(
        "canary analysis interval 1 of 3 could not be judged: "
        "GetMetricData failed: AccessDenied: not authorized"
    )
    final = await status_of(handle)
    assert final.analysis is not None
    assert (final.analysis.state, final.analysis.intervals) == ("failed", [])


async def test_a_rejection_mid_analysis_stops_it(
    existing, fake_judge: FakeJudge, start, time_skipping
):
    handle = await start(with_analysis())
    await after_intervals(time_skipping, handle, 1)

    await handle.execute_update("reject", {"by": "alice", "reason": "seen enough"})
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED and result.canary_deleted
    assert [judged.index for judged in fake_judge.inputs] == [1]
    final = await status_of(handle)
    assert final.analysis is not None
    assert (final.analysis.state, len(final.analysis.intervals)) == ("stopped", 1)


async def test_a_cancel_mid_analysis_stops_it_and_deletes_the_canary(
    existing, fake_judge: FakeJudge, start, time_skipping
):
    handle = await start(with_analysis())
    await after_intervals(time_skipping, handle, 1)

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as cancelled:
        await handle.result()

    assert isinstance(cancelled.value.cause, CancelledError)
    final = await status_of(handle)
    assert final.analysis is not None and final.analysis.state == "stopped"
    assert final.result is not None and final.result.canary_deleted
    assert [judged.index for judged in fake_judge.inputs] == [1]
    assert "myappCanary" not in existing.services


async def test_a_weighted_analysis_reads_each_services_own_target_group(
    fake_ecs: FakeEcs, fake_judge: FakeJudge, start
):
    """`{target_group}` and `{load_balancer}` in CloudWatch's format, per side."""
    elb = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    rule = f"{elb}:listener-rule/app/myapp-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
    main, canary, baseline = (
        f"{elb}:targetgroup/{name}/{suffix}"
        for name, suffix in (
            ("myapp-tg", "73e2"),
            ("myapp-canary-tg", "4f3b"),
            ("myapp-base-tg", "8c7d"),
        )
    )
    behind = [{"targetGroupArn": main, "containerName": "web", "containerPort": 80}]
    fake_ecs.services["myapp"] = running_service("myapp").model_copy(
        update={"load_balancers": behind}
    )
    actions = [{"Type": "forward", "TargetGroupArn": main}]
    fake_ecs.rules[rule] = ListenerRule(
        rule_arn=rule, listener_arn=listener_arn_of(rule), is_default=False, actions=actions
    )
    elb_metric = {
        "name": "5xx",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "HTTPCode_Target_5XX_Count",
        "dimensions": {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"},
        "stat": "Sum",
    }
    traffic = {"listener_rule_arn": rule, "canary_target_group_arn": canary, "weight_percent": 20}
    body = request(
        canary={"traffic": traffic},
        verification={
            "require_approval": False,
            "analysis": analysis(metrics=[elb_metric], baseline_target_group_arn=baseline),
        },
    )

    result = await (await start(body)).result()

    assert result.outcome == Outcome.SUCCEEDED
    first = fake_judge.inputs[0]
    assert first.canary["{target_group}"] == "targetgroup/myapp-canary-tg/4f3b"
    assert first.baseline["{target_group}"] == "targetgroup/myapp-base-tg/8c7d"
    assert (
        first.canary["{load_balancer}"]
        == first.baseline["{load_balancer}"]
        == ("app/myapp-alb/50dc6c495c0c9188")
    )
