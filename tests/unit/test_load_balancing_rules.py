"""The pure rules behind load balancers: the weighted canary's rule math and refusals, the
target share wording, and how a wait matches a deployment's tasks to its targets."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from activities.target_health import deployment_targets, private_address, target_groups
from cli.format import canary_text, status_lines
from ecs_canary.gate import Gate
from ecs_canary.models import CanarySettings, DeploymentRequest, Stage
from ecs_canary.scaling import ScalableTarget, ScalingHoldState
from ecs_canary.targets import TargetCount, share_percent, target_share_text, targets_text
from ecs_canary.text import load_balancing_lines
from ecs_canary.traffic import (
    ListenerRule,
    TrafficSettings,
    TrafficState,
    canary_load_balancers,
    canary_weights,
    forward_weights,
    group_percents,
    listener_arn_of,
    target_group_name,
    traffic_refusal,
    weighted_actions,
    weights_text,
)
from tests.helpers.statuses import deployment_status
from workflows.presentation import current_details
from workflows.state import DeploymentState

ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
LISTENER = f"{ELB}:listener/app/my-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
RULE = f"{ELB}:listener-rule/app/my-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
MAIN = f"{ELB}:targetgroup/my-tg/73e2d6bc24d8a067"
BLUE = f"{ELB}:targetgroup/blue-tg/1a2b3c4d5e6f7a8b"
CANARY = f"{ELB}:targetgroup/canary-tg/4f3b2a1c0d9e8f7a"
SETTINGS = TrafficSettings(
    listener_rule_arn=RULE, canary_target_group_arn=CANARY, weight_percent=10
)


def _rule(actions: list[dict[str, Any]], is_default: bool = False) -> ListenerRule:
    return ListenerRule(
        rule_arn=RULE, listener_arn=LISTENER, is_default=is_default, actions=actions
    )


def _forward(*groups: tuple[str, int], **extra: Any) -> dict[str, Any]:
    target_groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in groups]
    return {"Type": "forward", "ForwardConfig": {"TargetGroups": target_groups}, **extra}


def test_a_rules_listener_and_a_groups_name_come_from_their_arns():
    assert listener_arn_of(RULE) == LISTENER
    assert target_group_name(MAIN) == "my-tg"


def test_a_plain_forward_weighs_one_and_a_forward_config_its_weights():
    assert forward_weights([{"Type": "forward", "TargetGroupArn": MAIN}]) == {MAIN: 1}
    assert forward_weights([_forward((MAIN, 3), (CANARY, 0))]) == {MAIN: 3, CANARY: 0}
    assert forward_weights([{"Type": "fixed-response"}]) == {}
    assert forward_weights([_forward((MAIN, 1)), _forward((BLUE, 1))]) == {}  # not one forward


@pytest.mark.parametrize(
    ("recorded", "weight", "expected"),
    [
        ({MAIN: 1}, 10, {MAIN: 90, CANARY: 10}),
        ({MAIN: 100, CANARY: 0}, 25, {MAIN: 75, CANARY: 25}),
        ({MAIN: 1, BLUE: 1}, 10, {MAIN: 45, BLUE: 45, CANARY: 10}),
        ({MAIN: 2, BLUE: 1}, 1, {MAIN: 66, BLUE: 33, CANARY: 1}),  # largest remainder: 99
        ({MAIN: 1, BLUE: 1}, 5, {MAIN: 48, BLUE: 47, CANARY: 5}),
        ({MAIN: 1}, 100, {MAIN: 0, CANARY: 100}),
    ],
)
def test_the_recorded_groups_share_what_the_canary_leaves_in_proportion(recorded, weight, expected):
    weights = canary_weights(recorded, CANARY, weight)
    assert weights == expected
    assert sum(weights.values()) == 100


def test_weighting_keeps_the_other_actions_the_order_and_the_stickiness():
    authenticate = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {}}
    sticky = {"Enabled": True, "DurationSeconds": 60}
    forward = {
        "Type": "forward",
        "Order": 2,
        "TargetGroupArn": MAIN,
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": MAIN, "Weight": 1}],
            "TargetGroupStickinessConfig": sticky,
        },
    }
    recorded = [authenticate, forward]

    weighted = weighted_actions(recorded, CANARY, 10)

    assert weighted == [
        authenticate,
        {
            "Type": "forward",
            "Order": 2,
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": MAIN, "Weight": 90},
                    {"TargetGroupArn": CANARY, "Weight": 10},
                ],
                "TargetGroupStickinessConfig": sticky,
            },
        },
    ]
    assert recorded[1]["TargetGroupArn"] == MAIN  # the recorded actions are not changed


@pytest.mark.parametrize(
    ("actions", "refusal"),
    [
        ([_forward((MAIN, 90), (CANARY, 10))], "already forwards 10 % to the canary's target"),
        ([{"Type": "redirect"}], "has no single forward action to weight"),
        ([_forward((CANARY, 0))], "forwards to no target group but the canary's"),
        ([_forward((MAIN, 0), (CANARY, 0))], "forwards to no target group but the canary's"),
    ],
)
def test_a_rule_that_cannot_carry_the_canary_is_refused(actions, refusal):
    reason = traffic_refusal(_rule(actions), SETTINGS)
    assert reason is not None and refusal in reason


@pytest.mark.parametrize(
    "actions",
    [[{"Type": "forward", "TargetGroupArn": MAIN}], [_forward((MAIN, 100), (CANARY, 0))]],
)
def test_a_rule_forwarding_to_the_main_group_is_accepted(actions):
    assert traffic_refusal(_rule(actions), SETTINGS) is None


def test_the_canary_registers_only_in_its_group_with_the_forwarded_entrys_container():
    load_balancers = [
        {"targetGroupArn": BLUE, "containerName": "admin", "containerPort": 8080},
        {
            "targetGroupArn": MAIN,
            "containerName": "web",
            "containerPort": 80,
            "loadBalancerName": "classic",
        },
    ]
    rule = _rule([{"Type": "forward", "TargetGroupArn": MAIN}])
    assert canary_load_balancers(load_balancers, rule, CANARY) == [
        {"targetGroupArn": CANARY, "containerName": "web", "containerPort": 80}
    ]
    unrelated = _rule([{"Type": "forward", "TargetGroupArn": f"{ELB}:targetgroup/x/1"}])
    assert canary_load_balancers(load_balancers, unrelated, CANARY)[0]["containerName"] == "admin"


def test_each_group_gets_its_percent_and_the_canarys_shows_even_at_zero():
    assert group_percents([{"Type": "forward", "TargetGroupArn": MAIN}], CANARY) == {
        MAIN: 100.0,
        CANARY: 0.0,
    }
    weights = group_percents([_forward((MAIN, 3), (CANARY, 1))], CANARY)
    assert weights == {MAIN: 75.0, CANARY: 25.0}
    assert weights_text(weights) == "my-tg 75 %, canary-tg 25 %"


@pytest.mark.parametrize(
    "traffic",
    [
        {"listener_rule_arn": LISTENER, "canary_target_group_arn": CANARY, "weight_percent": 10},
        {"listener_rule_arn": RULE, "canary_target_group_arn": MAIN[:-17], "weight_percent": 10},
        {"listener_rule_arn": RULE, "canary_target_group_arn": CANARY, "weight_percent": 0},
        {"listener_rule_arn": RULE, "canary_target_group_arn": CANARY, "weight_percent": 101},
        {
            "listener_rule_arn": RULE.replace("/app/", "/net/"),
            "canary_target_group_arn": CANARY,
            "weight_percent": 10,
        },
        {"listener_rule_arn": RULE, "canary_target_group_arn": CANARY},
    ],  # fmt: skip
    ids=["listener-arn", "group-arn", "zero", "over-100", "network-lb", "no-weight"],
)
def test_traffic_settings_are_checked_before_anything_starts(traffic):
    with pytest.raises(ValidationError):
        CanarySettings.model_validate({"traffic": traffic})


def test_the_share_is_the_deployments_healthy_targets_times_the_groups_weight():
    count = TargetCount(target_group_arn=MAIN, tasks=1, healthy=1, healthy_in_group=4)
    assert target_share_text(count) == "1 of 4 healthy targets in my-tg, ~25 %"
    assert share_percent(count, group_percent=50) == 12.5
    three = TargetCount(target_group_arn=MAIN, tasks=1, healthy=1, healthy_in_group=3)
    assert target_share_text(three) == "1 of 3 healthy targets in my-tg, ~33 %"
    none = TargetCount(target_group_arn=MAIN, tasks=1, healthy=0, healthy_in_group=0)
    assert target_share_text(none) == "0 of 0 healthy targets in my-tg, ~0 %"
    assert not none.all_healthy and count.all_healthy


def test_status_lines_name_the_targets_traffic_and_their_shares():
    canary = TargetCount(target_group_arn=CANARY, tasks=1, healthy=1, healthy_in_group=1)
    main = TargetCount(target_group_arn=MAIN, tasks=2, healthy=2, healthy_in_group=2)
    traffic = TrafficState(
        rule=_rule([{"Type": "forward", "TargetGroupArn": MAIN}]),
        canary_target_group_arn=CANARY,
        weights={MAIN: 90.0, CANARY: 10.0},
        shifted=True,
    )
    assert targets_text([canary, main], traffic.weights) == (
        "1 of 1 healthy targets in canary-tg, ~10 %; 2 of 2 healthy targets in my-tg, ~90 %"
    )
    assert load_balancing_lines([canary], traffic, None) == [
        ("Targets", "1 of 1 healthy targets in canary-tg, ~10 %"),
        ("Traffic", "my-tg 90 %, canary-tg 10 % (the canary's weight)"),
    ]
    assert load_balancing_lines([], None, None) == []


# --- Matching a deployment's tasks to their targets ------------------------------------------


def _task(address: str | None, started_by: str = "ecs-svc/1", status: str = "RUNNING") -> dict:
    details = [{"name": "privateIPv4Address", "value": address}] if address else []
    attachment = {"type": "ElasticNetworkInterface", "details": details}
    return {
        "taskArn": f"arn:task/{address}",
        "startedBy": started_by,
        "lastStatus": status,
        "attachments": [attachment] if address else [],
    }


class FakeClients:
    """ECS (tasks) and ELBv2 (target health) answering from fixed lists; records calls."""

    def __init__(self, tasks: list[dict], health: dict[str, list[tuple[str, str]]]) -> None:
        self.tasks, self.health, self.calls = tasks, health, []

    def ecs(self, region: str | None) -> FakeClients:
        return self

    elbv2 = ecs

    def list_tasks(self, **params: Any) -> dict:
        self.calls.append(("ListTasks", params))
        started = [t for t in self.tasks if t["startedBy"] == params["startedBy"]]
        return {"taskArns": [t["taskArn"] for t in started]}

    def describe_tasks(self, **params: Any) -> dict:
        self.calls.append(("DescribeTasks", params))
        return {"tasks": [t for t in self.tasks if t["taskArn"] in params["tasks"]]}

    def describe_target_health(self, TargetGroupArn: str) -> dict:  # noqa: N803 - boto3's name
        self.calls.append(("DescribeTargetHealth", TargetGroupArn))
        return {
            "TargetHealthDescriptions": [
                {"Target": {"Id": target, "Port": 80}, "TargetHealth": {"State": state}}
                for target, state in self.health[TargetGroupArn]
            ]
        }


def _service(*groups: str) -> dict[str, Any]:
    balancers = [{"targetGroupArn": g, "containerName": "web", "containerPort": 80} for g in groups]
    return {"serviceName": "myappCanary", "loadBalancers": balancers}


def test_a_deployments_targets_are_its_running_tasks_addresses():
    clients = FakeClients(
        [_task("10.0.0.1"), _task("10.0.0.2", started_by="ecs-svc/old")],
        {MAIN: [("10.0.0.1", "healthy"), ("10.0.0.2", "healthy"), ("10.0.0.9", "draining")]},
    )
    (count,) = deployment_targets(clients, None, "c", _service(MAIN, MAIN), "ecs-svc/1")
    assert count == TargetCount(target_group_arn=MAIN, tasks=1, healthy=1, healthy_in_group=2)
    assert [name for name, _ in clients.calls] == [
        "ListTasks",
        "DescribeTasks",
        "DescribeTargetHealth",
    ]


def test_without_load_balancers_or_awsvpc_addresses_no_target_is_read():
    clients = FakeClients([_task(None)], {MAIN: []})
    assert deployment_targets(clients, None, "c", _service(), "ecs-svc/1") == []
    assert clients.calls == []
    assert deployment_targets(clients, None, "c", _service(MAIN), "ecs-svc/1") == []
    assert [name for name, _ in clients.calls] == ["ListTasks", "DescribeTasks"]


def test_target_groups_and_addresses_are_read_from_ecs_shapes():
    assert target_groups(
        {"loadBalancers": [{"targetGroupArn": MAIN}, {"loadBalancerName": "x"}]}
    ) == [MAIN]
    assert private_address(_task("10.0.0.7")) == "10.0.0.7"
    assert private_address({"attachments": [{"type": "Other", "details": []}]}) is None


def test_starter_status_and_the_web_ui_show_the_same_lines():
    canary = TargetCount(target_group_arn=MAIN, tasks=1, healthy=1, healthy_in_group=4)
    scaling = ScalingHoldState(
        target=ScalableTarget(resource_id="service/prod/myapp", min_capacity=2, max_capacity=8)
    )
    lines = status_lines("wid", deployment_status(targets=[canary], scaling=scaling))
    assert "targets:   1 of 4 healthy targets in my-tg, ~25 %" in lines
    assert "scaling:   scalable target service/prod/myapp (range 2-8)" in lines

    request = DeploymentRequest.model_validate(
        {
            "cluster": "prod",
            "service_name": "myapp",
            "task_definition": {
                "family": "f",
                "containerDefinitions": [{"name": "w", "image": "i"}],
            },
            "service_definition": {"desiredCount": 4},
        }
    )
    state = DeploymentState(stage=Stage.VERIFICATION, targets=[canary], scaling=scaling)
    details = current_details(request, state, Gate(), "wid", datetime.now(UTC))
    assert "**Targets:** 1 of 4 healthy targets in my-tg, ~25 %" in details
    assert "**Scaling:** scalable target service/prod/myapp (range 2-8)" in details


def test_the_documented_weighted_canaries_are_valid_requests():
    root = Path(__file__).resolve().parents[2]
    readme = root / "README.md"
    (full,) = [b for b in _json_blocks(readme) if '"traffic"' in b]
    request = DeploymentRequest.model_validate(json.loads(full))
    assert request.canary.traffic is not None and request.canary.traffic.weight_percent == 10
    rule = request.canary.traffic.listener_rule_arn
    assert canary_text(request) == f"1 task(s) as myappCanary, 10 % of listener rule {rule}"
    (fragment,) = _json_blocks(root / "docs" / "load-balancers.md")
    canary = CanarySettings.model_validate(json.loads("{" + fragment + "}")["canary"])
    assert canary.traffic == request.canary.traffic


def _json_blocks(path: Path) -> list[str]:
    return re.findall(r"```json\n(.*?)```", path.read_text(), flags=re.DOTALL)
