"""Canary analysis without Temporal or CloudWatch: the series an interval reads (placeholders,
CloudWatch's dimension formats), and how the analysis reads in the Web UI, in `gate_open` and
in a judge's decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cli.format import status_lines
from cli.timeline import Timeline
from ecs_canary.analysis import (
    AnalysisInterval,
    AnalysisSettings,
    AnalysisStatus,
    MetricJudgement,
)
from ecs_canary.analysis_queries import (
    JudgeIntervalInput,
    cluster_name,
    load_balancer_dimension,
    placeholder_values,
    target_group_dimension,
)
from ecs_canary.analysis_text import failing_metrics, interval_table, summary_text
from ecs_canary.gate import Gate
from ecs_canary.models import Decision, DeploymentRequest, DeploymentStatus
from ecs_canary.notification_messages import GateFacts, NotificationInput, RunLinks, body
from ecs_canary.notifications import Notification
from tests.helpers.statuses import deployment_status
from workflows.presentation import current_details
from workflows.state import DeploymentState

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/myapp-canary-tg/4f3b2a1c"
RULE = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
    "listener-rule/app/myapp-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
)


def test_target_group_and_load_balancer_take_cloudwatchs_dimension_format():
    assert target_group_dimension(GROUP) == "targetgroup/myapp-canary-tg/4f3b2a1c"
    assert load_balancer_dimension(RULE) == "app/myapp-alb/50dc6c495c0c9188"
    assert cluster_name("arn:aws:ecs:us-east-1:123456789012:cluster/prod") == "prod"
    assert cluster_name("prod") == "prod"


def test_placeholders_are_filled_per_side_and_the_target_group_ones_only_with_a_group():
    assert placeholder_values("myappCanary", "prod", GROUP, RULE) == {
        "{service}": "myappCanary",
        "{cluster}": "prod",
        "{target_group}": "targetgroup/myapp-canary-tg/4f3b2a1c",
        "{load_balancer}": "app/myapp-alb/50dc6c495c0c9188",
    }
    assert placeholder_values("myappBaseline", "prod") == {
        "{service}": "myappBaseline",
        "{cluster}": "prod",
    }


def test_one_query_per_metric_and_side_at_the_analysis_period():
    settings = AnalysisSettings(
        period_seconds=1,
        metrics=[
            {
                "name": "5xx",
                "namespace": "AWS/ApplicationELB",
                "metric_name": "HTTPCode_Target_5XX_Count",
                "dimensions": {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"},
                "stat": "Sum",
            }
        ],
    )
    request = JudgeIntervalInput(
        region="us-east-1",
        cluster="prod",
        service="myapp",
        settings=settings,
        canary=placeholder_values("myappCanary", "prod", GROUP, RULE),
        baseline=placeholder_values("myappBaseline", "prod", GROUP.replace("canary", "base"), RULE),
        index=1,
        started_at=NOW,
        ended_at=NOW + timedelta(seconds=10),
    )

    canary, baseline = request.metric_data_queries()

    assert (canary["Id"], baseline["Id"]) == ("canary_0", "baseline_0")
    assert canary["MetricStat"]["Period"] == 1 and canary["MetricStat"]["Stat"] == "Sum"
    assert baseline["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "TargetGroup", "Value": "targetgroup/myapp-base-tg/4f3b2a1c"},
        {"Name": "LoadBalancer", "Value": "app/myapp-alb/50dc6c495c0c9188"},
    ]


def _metric(name: str, classification: str, **changes: Any) -> MetricJudgement:
    passed = classification == "pass"
    values: dict[str, Any] = {
        "name": name,
        "group": "default",
        "canary": 0.074 if not passed else 0.0502,
        "baseline": 0.05,
        "shift_percent": 48.0 if not passed else 0.4,
        "p_value": 0.0001 if not passed else 0.61,
        "classification": classification,
        "passed": passed,
        "data_points": 60,
    }
    return MetricJudgement.model_validate({**values, **changes})


def _analysis(state: str = "running") -> AnalysisStatus:
    interval = AnalysisInterval(
        index=2,
        started_at=NOW - timedelta(minutes=10),
        ended_at=NOW - timedelta(minutes=5),
        score=50,
        verdict="fail",
        metrics=[
            _metric("errors", "pass"),
            _metric("p99 | latency", "high", critical=True),
            _metric("cpu", "nodata", canary=None, shift_percent=None, p_value=None, data_points=12),
        ],
    )
    return AnalysisStatus(
        state=state,
        score=50,
        verdict="fail",
        period_seconds=60,
        intervals_planned=3,
        baseline_service="myappBaseline",
        intervals=[interval],
    )


def test_the_summary_and_the_metrics_that_did_not_pass():
    analysis = _analysis("failed")

    assert summary_text(analysis) == (
        "failed, score 50, verdict fail; 1 of 3 intervals judged; baseline myappBaseline, "
        "60 s periods"
    )
    assert failing_metrics(analysis.intervals[0]) == (
        "p99 | latency high (+48.0%, p=0.0001, critical), cpu nodata (12 data points)"
    )
    waiting = AnalysisStatus(period_seconds=60, intervals_planned=3, baseline_service="b")
    assert summary_text(waiting) == "waiting; 0 of 3 intervals judged; baseline b, 60 s periods"


def test_an_interval_reads_as_a_markdown_table_one_row_per_metric():
    rows = interval_table(_analysis().intervals[0]).splitlines()

    assert rows[0] == ("| metric | group | canary | baseline | shift | p_value | result | points |")
    assert rows[2] == "| errors | default | 0.0502 | 0.05 | +0.4% | 0.61 | pass | 60 |"
    assert rows[3] == (
        "| p99 \\| latency | default | 0.074 | 0.05 | +48.0% | 0.0001 | high (bad, critical) | 60 |"
    )
    assert rows[4] == "| cpu | default | - | 0.05 | - | - | nodata | 12 |"


def test_web_ui_details_show_the_analysis_and_its_latest_interval_as_a_table():
    request = DeploymentRequest.model_validate(
        {
            "cluster": "prod",
            "service_name": "myapp",
            "task_definition": {
                "family": "myapp-task",
                "containerDefinitions": [{"name": "web", "image": "nginx:1.27"}],
            },
            "service_definition": {"desiredCount": 3},
        }
    )
    state = DeploymentState(analysis=_analysis())

    details = current_details(request, state, Gate(), "wf", NOW).split("\n\n")

    assert details[1] == f"**Canary analysis:** {summary_text(_analysis())}"
    assert details[2] == (
        "**Analysis interval 2 of 3: score 50, fail** (11:50:00 UTC to 11:55:00 UTC)"
    )
    assert details[3].splitlines()[0].startswith("| metric | group |")


def _gate_open(fmt: str, status: DeploymentStatus) -> dict[str, Any]:
    run = RunLinks(namespace="default", workflow_id="wf", run_id="r", web_ui="http://ui")
    gate = GateFacts(
        deadline=NOW, timeout_seconds=600, on_timeout="reject", min_approvals=1, approvers=[]
    )
    request = NotificationInput(
        notification=Notification(url="http://127.0.0.1:9000/hook", format=fmt),
        target_index=0,
        event="gate_open",
        at=NOW,
        status=status,
        gate=gate,
    )
    return body(request, run)


def test_gate_open_carries_the_analysis_score_and_verdict():
    analysis = _analysis("marginal").model_copy(update={"score": 80, "verdict": "marginal"})
    status = deployment_status(analysis=analysis)

    posted = _gate_open("json", status)
    slack = _gate_open("slack", status)

    expected = summary_text(analysis)
    assert posted["facts"]["Canary analysis"] == expected
    assert posted["status"]["analysis"]["score"] == 80
    assert posted["status"]["analysis"]["verdict"] == "marginal"
    assert f"*Canary analysis:* {expected}" in slack["blocks"][1]["text"]["text"]
    assert "Canary analysis" not in _gate_open("json", deployment_status())["facts"]


def test_starter_status_gives_the_analysis_one_line_and_the_gate_waits_for_it():
    running = _analysis("running")
    shown = deployment_status(gate_open=False, analysis=running)
    lines = status_lines("wid", shown)

    assert f"analysis:  {summary_text(running)}" in lines
    assert "gate:      closed, waiting for the canary analysis" in lines


def test_watch_tells_each_judged_interval_once_before_the_decision_it_caused():
    analysis = _analysis("failed")
    decision = Decision(
        action="reject", by="analysis", reason="...", at=NOW - timedelta(minutes=5), via="analysis"
    )
    story = Timeline("wid")
    status = deployment_status(gate_open=False, analysis=analysis, decision=decision)

    told = story.of_status(status)

    assert told[-2:] == [
        "canary analysis interval 2 of 3: score 50, fail",
        "decision: reject by analysis (analysis): ...",
    ]
    assert story.of_status(status) == []
