"""Both canary analysis examples on the real dev server and the emulator with its traffic on,
driven as the README walks through them: the `temporal` CLI starts each, `starter.py` reads and
decides. The good one passes and waits at the gate with its report; the bad one (`errors-5`) is
rejected by the judge after its first interval, with nobody deciding, and leaves no canary and
no baseline behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecs_canary.models import DeploymentStatus
from ecs_canary.names import workflow_id_for
from tests.helpers import CLUSTER, cli_start, describe, status, wait_until
from tests.helpers.demo_script import demo
from tests.helpers.load_balancers import forward_weights, rule_actions

pytestmark = pytest.mark.usefixtures("fast_health_checks")

WORKFLOW_ID = workflow_id_for(CLUSTER, "myapp")
# The examples' three 20-second intervals, the canary and the baseline starting first.
GOOD_RUN_SECONDS = 150


@pytest.fixture
def analysis_examples(
    emulator: Any, ecs_state: dict[str, Any], ecs: Any, elbv2: Any
) -> dict[str, dict[str, Any]]:
    """What `scripts/demo.py analysis` sets up, on the test's emulator: its traffic (off again
    before the next test), the load balancer and myapp behind it; both examples with its ids
    and ARNs, by file name."""
    emulator.admin.settings(traffic_rps=demo.ANALYSIS_TRAFFIC_RPS)
    good = demo.resolve(json.loads(demo.ANALYSIS_EXAMPLES[0].read_text()), ecs_state)
    arns = demo.set_up_balancer(elbv2, ecs_state, good)
    examples = {
        path.name: demo.resolve(json.loads(path.read_text()), ecs_state, arns)
        for path in demo.ANALYSIS_EXAMPLES
    }
    demo.seed_existing_service(examples["analysis.json"], ecs)
    return examples


async def started(client: Any, task_queue: str, starter: Any, request: dict[str, Any]) -> None:
    path = starter.request_file(request, "analysis.json")
    done = await cli_start(client, task_queue, WORKFLOW_ID, "--input-file", path)
    assert done.code == 0, done.err


async def status_from_starter(starter: Any) -> DeploymentStatus:
    shown = await starter.run("status", WORKFLOW_ID, "--json")
    assert shown.code == 0, shown.err
    return DeploymentStatus.model_validate_json(shown.out)


def gone(ecs: Any, service: str) -> bool:
    found = describe(ecs, service)
    return found is None or found["status"] == "INACTIVE"


@pytest.mark.slow
async def test_the_good_example_passes_and_waits_at_the_gate_with_its_report(
    worker, client, task_queue, starter, runs, analysis_examples, ecs, elbv2
):
    request = analysis_examples["analysis.json"]
    rule = request["canary"]["traffic"]["listener_rule_arn"]
    recorded = rule_actions(elbv2, rule)
    await started(client, task_queue, starter, request)
    run = await runs.track(WORKFLOW_ID)

    async def analysing() -> bool:
        analysis = (await status(run)).analysis
        return analysis is not None and analysis.state == "running"

    await wait_until(analysing, timeout=60)
    groups = [
        request["service_definition"]["loadBalancers"][0]["targetGroupArn"],
        request["canary"]["traffic"]["canary_target_group_arn"],
        request["verification"]["analysis"]["baseline_target_group_arn"],
    ]
    assert forward_weights(elbv2, rule) == dict(zip(groups, [50, 25, 25], strict=True))
    early = await starter.run("approve", WORKFLOW_ID, "--by", "alice")
    assert early.code != 0 and "the canary analysis is still running" in early.err + early.out

    async def gate_open() -> bool:
        return (await status(run)).gate_open

    await wait_until(gate_open, timeout=GOOD_RUN_SECONDS)
    opened = await status_from_starter(starter)
    analysis = opened.analysis
    assert analysis is not None
    assert (analysis.state, analysis.verdict, analysis.score) == ("passed", "pass", 100)
    assert [interval.index for interval in analysis.intervals] == [1, 2, 3]
    for interval in analysis.intervals:
        assert [m.name for m in interval.metrics] == ["5xx-rate", "p99-latency", "cpu"]
        assert all(m.data_points >= 15 for m in interval.metrics), interval
    shown = await starter.run("status", WORKFLOW_ID)
    assert (
        "analysis:  passed, score 100, verdict pass; 3 of 3 intervals judged; baseline "
        "myappBaseline, 1 s periods"
    ) in shown.lines

    approved = await starter.run("approve", WORKFLOW_ID, "--by", "alice")
    assert approved.code == 0, approved.err
    result = await run.result()

    assert result.outcome == "succeeded"
    assert gone(ecs, "myappCanary") and gone(ecs, "myappBaseline")
    assert rule_actions(elbv2, rule) == recorded


@pytest.mark.slow
async def test_the_bad_example_is_rejected_by_the_judge_and_leaves_nothing_behind(
    worker, client, task_queue, starter, runs, analysis_examples, ecs, elbv2
):
    request = analysis_examples["analysis-bad.json"]
    rule = request["canary"]["traffic"]["listener_rule_arn"]
    recorded = rule_actions(elbv2, rule)
    await started(client, task_queue, starter, request)
    await runs.track(WORKFLOW_ID)

    watched = await (await starter.spawn("watch", WORKFLOW_ID)).finish(timeout=120)

    assert "outcome: rejected (reject (analysis) by analysis: canary analysis interval 1 of 3" in (
        watched.out
    )
    final = await status_from_starter(starter)
    assert final.decision is not None and final.decision.via == "analysis"
    assert [attempt.via for attempt in final.attempts] == ["analysis"]  # nobody else decided
    analysis = final.analysis
    assert analysis is not None and (analysis.state, analysis.verdict) == ("failed", "fail")
    (interval,) = analysis.intervals
    errors = next(metric for metric in interval.metrics if metric.name == "5xx-rate")
    assert (errors.classification, errors.passed, interval.score) == ("high", False, 0)
    assert gone(ecs, "myappCanary") and gone(ecs, "myappBaseline")
    assert final.result is not None and final.result.canary_deleted
    assert rule_actions(elbv2, rule) == recorded
