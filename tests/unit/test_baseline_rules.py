"""The pure rules of canary analysis's baseline: the listener rule's weights beside a
baseline, its refusals, what a request with analysis may ask for, and how it reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from cli.format import status_lines
from ecs_canary.baseline import BaselineState, baseline_text
from ecs_canary.gate import Gate
from ecs_canary.models import DeploymentRequest
from ecs_canary.notification_messages import finished_message
from ecs_canary.targets import TargetCount
from ecs_canary.traffic import (
    ListenerRule,
    TrafficSettings,
    canary_weights,
    group_percents,
    traffic_refusal,
    weighted_actions,
)
from tests.helpers import analysis_settings
from tests.helpers.statuses import deployment_status, finished_status
from workflows.presentation import current_details
from workflows.state import DeploymentState

ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
RULE = f"{ELB}:listener-rule/app/my-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
MAIN = f"{ELB}:targetgroup/my-tg/73e2d6bc24d8a067"
BLUE = f"{ELB}:targetgroup/blue-tg/1a2b3c4d5e6f7a8b"
CANARY = f"{ELB}:targetgroup/canary-tg/4f3b2a1c0d9e8f7a"
BASELINE = f"{ELB}:targetgroup/baseline-tg/0a1b2c3d4e5f6a7b"


def _forward(*groups: tuple[str, int]) -> dict[str, Any]:
    target_groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in groups]
    return {"Type": "forward", "ForwardConfig": {"TargetGroups": target_groups}}


@pytest.mark.parametrize(
    ("recorded", "weight", "expected"),
    [
        ({MAIN: 1}, 10, {MAIN: 80, CANARY: 10, BASELINE: 10}),
        ({MAIN: 100, CANARY: 0, BASELINE: 0}, 25, {MAIN: 50, CANARY: 25, BASELINE: 25}),
        ({MAIN: 2, BLUE: 1}, 5, {MAIN: 60, BLUE: 30, CANARY: 5, BASELINE: 5}),
        ({MAIN: 1, BLUE: 1}, 1, {MAIN: 49, BLUE: 49, CANARY: 1, BASELINE: 1}),
        ({MAIN: 1, BLUE: 2}, 2, {MAIN: 32, BLUE: 64, CANARY: 2, BASELINE: 2}),
        ({MAIN: 1}, 50, {MAIN: 0, CANARY: 50, BASELINE: 50}),
    ],
)
def test_beside_a_baseline_the_recorded_groups_share_100_minus_2w(recorded, weight, expected):
    weights = canary_weights(recorded, CANARY, weight, BASELINE)
    assert weights == expected
    assert sum(weights.values()) == 100


def test_the_weighted_rule_and_its_percents_name_the_baseline_group():
    actions = weighted_actions([{"Type": "forward", "TargetGroupArn": MAIN}], CANARY, 10, BASELINE)
    assert group_percents(actions, CANARY, BASELINE) == {MAIN: 80, CANARY: 10, BASELINE: 10}
    recorded = [{"Type": "forward", "TargetGroupArn": MAIN}]
    assert group_percents(recorded, CANARY, BASELINE) == {MAIN: 100, CANARY: 0, BASELINE: 0}


@pytest.mark.parametrize(
    ("actions", "refusal"),
    [
        ([_forward((MAIN, 90), (BASELINE, 10))], "already forwards 10 % to the baseline's"),
        ([_forward((CANARY, 0), (BASELINE, 0))], "but the canary's and the baseline's"),
    ],
)
def test_a_rule_left_forwarding_to_the_baseline_is_refused(actions, refusal):
    rule = ListenerRule(rule_arn=RULE, listener_arn="x", is_default=False, actions=actions)
    settings = TrafficSettings(
        listener_rule_arn=RULE, canary_target_group_arn=CANARY, weight_percent=10
    )
    reason = traffic_refusal(rule, settings, BASELINE)
    assert reason is not None and refusal in reason


def _request(traffic: dict[str, Any] | None = None, **analysis: Any) -> dict[str, Any]:
    canary: dict[str, Any] = {"traffic": traffic} if traffic else {}
    return {
        "cluster": "ecs-canary",
        "service_name": "myapp",
        "task_definition": {"family": "f", "containerDefinitions": [{"name": "w", "image": "i"}]},
        "service_definition": {"desiredCount": 2},
        "canary": canary,
        "verification": {"analysis": analysis_settings(**analysis)},
    }


WEIGHTED = {"listener_rule_arn": RULE, "canary_target_group_arn": CANARY, "weight_percent": 10}
TG_METRIC = {
    "name": "latency",
    "namespace": "AWS/ApplicationELB",
    "metric_name": "TargetResponseTime",
    "dimensions": {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"},
    "stat": "p99",
}


@pytest.mark.parametrize(
    ("request_body", "refusal"),
    [
        (_request(metrics=[TG_METRIC]), "need canary.traffic and analysis.baseline_target_group"),
        (_request(baseline_target_group_arn=BASELINE), "baseline_target_group_arn needs canary"),
        (_request(WEIGHTED), "needs analysis.baseline_target_group_arn"),
        (_request(WEIGHTED, baseline_target_group_arn="tg"), "is not a target group ARN"),
        (_request(WEIGHTED, baseline_target_group_arn=CANARY), "must not be the canary's"),
        (
            _request({**WEIGHTED, "weight_percent": 51}, baseline_target_group_arn=BASELINE),
            "at most 50 with analysis",
        ),
    ],
)
def test_a_request_with_analysis_that_cannot_run_is_refused(request_body, refusal):
    with pytest.raises(ValidationError) as refused:
        DeploymentRequest.model_validate(request_body)
    assert refusal in str(refused.value)


def test_a_canary_named_like_the_baseline_is_refused():
    body = _request()
    body["canary"]["suffix"] = "Baseline"
    with pytest.raises(ValidationError, match="that is the baseline's name"):
        DeploymentRequest.model_validate(body)


def test_a_weighted_request_with_its_baseline_group_and_placeholders_is_valid():
    body = _request(
        {**WEIGHTED, "weight_percent": 50}, baseline_target_group_arn=BASELINE, metrics=[TG_METRIC]
    )
    request = DeploymentRequest.model_validate(body)
    assert request.baseline_service_name == "myappBaseline"
    no_analysis = DeploymentRequest.model_validate({**body, "verification": {}})
    assert no_analysis.baseline_service_name is None


def test_the_baseline_reads_as_its_service_tasks_and_share():
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/myapp-task:7"
    starting = BaselineState(service="myappBaseline", task_definition_arn=arn, desired_count=1)
    assert baseline_text(starting, {}) == "myappBaseline on myapp-task:7"
    count = TargetCount(target_group_arn=BASELINE, tasks=1, healthy=1, healthy_in_group=1)
    steady = starting.model_copy(update={"running_count": 1, "targets": [count]})
    assert baseline_text(steady, {BASELINE: 10.0}) == (
        "myappBaseline on myapp-task:7, 1/1 running; 1 of 1 healthy targets in baseline-tg, ~10 %"
    )
    deleted = steady.model_copy(update={"deleted": True})
    assert baseline_text(deleted, {}) == "myappBaseline deleted"


@pytest.mark.parametrize(
    ("deleted", "said"),
    [(True, "myappBaseline deleted"), (False, "myappBaseline was NOT deleted: delete it by hand")],
)
def test_the_finished_notification_says_whether_the_baseline_is_gone(deleted, said):
    status = finished_status("failed", "tasks failed", baseline={"service": "myappBaseline"})
    assert status.result is not None
    status.result.baseline_deleted = deleted
    assert ("Baseline", said) in finished_message(status).facts
    plain = finished_status("failed", "tasks failed")
    assert "Baseline" not in [label for label, _ in finished_message(plain).facts]


def test_starter_status_shows_the_baseline_beside_the_canarys_tasks():
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/myapp-task:7"
    baseline = {
        "service": "myappBaseline",
        "task_definition_arn": arn,
        "running_count": 1,
        "desired_count": 1,
    }
    shown = status_lines("ecs-canary/prod/myapp", deployment_status(baseline=baseline))
    assert "baseline:  myappBaseline on myapp-task:7, 1/1 running" in shown
    assert not [line for line in status_lines("w", deployment_status()) if "baseline" in line]


def test_the_web_ui_details_show_the_baseline():
    request = DeploymentRequest.model_validate(_request())
    state = DeploymentState(baseline=BaselineState(service="myappBaseline", deleted=True))
    details = current_details(request, state, Gate(), "ecs-canary/x/myapp", datetime.now(UTC))
    assert "**Baseline:** myappBaseline deleted" in details.split("\n\n")
