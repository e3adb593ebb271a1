"""Pure rules of the run's first look and of its waits' ends: the auto scaling range and
state, which services are refused (controller, strategy), what ECS's service deployment
record says about a lost deployment, and the refusals and canary load balancers the workflow
derives from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest
from pydantic import ValidationError

from activities.service_deployments import (
    ServiceDeploymentView,
    closest_record,
    find_record,
    record_verdict,
)
from ecs_canary.models import DeploymentRequest, ServiceSnapshot
from ecs_canary.scaling import (
    ScalableTarget,
    ScalingHoldState,
    SuspendedState,
    capacity_refusal,
    scalable_resource_id,
    scaling_text,
)
from ecs_canary.supported_services import unsupported_reason
from ecs_canary.traffic import ListenerRule
from workflows.preflight import canary_load_balancers, refusal

TARGET = ScalableTarget(resource_id="service/prod/myapp", min_capacity=2, max_capacity=6)
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/my-tg/73e2d6bc24d8a067"
CANARY_TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/c-tg/4f3b2a1c0d9e8f7a"
RULE = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/alb/"
    "50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
)
BEHIND = [{"targetGroupArn": TG, "containerName": "web", "containerPort": 80}]


# --- Auto scaling ------------------------------------------------------------------------------


def test_a_scalable_targets_id_names_the_cluster_even_when_given_its_arn():
    assert scalable_resource_id("prod", "myapp") == "service/prod/myapp"
    arn = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
    assert scalable_resource_id(arn, "myapp") == "service/prod/myapp"


def test_holding_suspends_dynamic_scaling_and_keeps_scheduled_scaling_as_it_was():
    recorded = SuspendedState.from_api({"ScheduledScalingSuspended": True})
    assert recorded == SuspendedState(scheduled_scaling=True)
    assert recorded.held_still().to_api() == {
        "DynamicScalingInSuspended": True,
        "DynamicScalingOutSuspended": True,
        "ScheduledScalingSuspended": True,
    }
    assert SuspendedState.from_api(None).held_still().scheduled_scaling is False


@pytest.mark.parametrize(("desired", "refused"), [(1, True), (2, False), (6, False), (7, True)])
def test_a_count_outside_the_range_is_refused_and_the_bounds_are_in(desired, refused):
    reason = capacity_refusal(TARGET, desired, "myapp")
    assert (reason is not None) == refused
    if reason:
        assert f"desiredCount {desired} is outside the auto scaling range" in reason
        assert "[2, 6]" in reason and "same_as_running_instances" in reason


def test_scaling_is_described_as_held_restored_or_stuck():
    assert scaling_text(ScalingHoldState(target=TARGET)) == (
        "scalable target service/prod/myapp (range 2-6)"
    )
    held = ScalingHoldState(target=TARGET, suspended=True)
    assert scaling_text(held) == "dynamic scaling suspended for the rolling deploy (range 2-6)"
    stuck = held.model_copy(update={"restore_failure": "AccessDenied"})
    assert scaling_text(stuck) == "dynamic scaling NOT restored (range 2-6): AccessDenied"


# --- Supported services ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("controller", "strategy", "named"),
    [
        ("CODE_DEPLOY", None, "uses the CODE_DEPLOY deployment controller"),
        ("EXTERNAL", "ROLLING", "uses the EXTERNAL deployment controller"),
        ("ECS", "BLUE_GREEN", "uses the BLUE_GREEN deployment strategy"),
        (None, "LINEAR", "uses the LINEAR deployment strategy"),
        (None, "CANARY", "uses the CANARY deployment strategy"),
    ],
)
def test_services_ecs_deploys_another_way_are_refused_by_name(controller, strategy, named):
    reason = unsupported_reason(controller, strategy, "service myapp")
    assert reason is not None and reason.startswith(f"service myapp {named}")


@pytest.mark.parametrize(("controller", "strategy"), [(None, None), ("ECS", "ROLLING")])
def test_ecs_rolling_services_are_deployed(controller, strategy):
    assert unsupported_reason(controller, strategy, "service myapp") is None


def _request(**service_definition: Any) -> dict[str, Any]:
    return {
        "cluster": "prod",
        "service_name": "myapp",
        "task_definition": {"family": "f", "containerDefinitions": [{"name": "w", "image": "i"}]},
        "service_definition": {"desiredCount": 3, **service_definition},
    }


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "CODE_DEPLOY deployment controller"),
        ({"deploymentConfiguration": {"strategy": "BLUE_GREEN"}}, "BLUE_GREEN deployment strategy"),
    ],
)
def test_a_request_for_another_controller_or_strategy_is_invalid(definition, named):
    with pytest.raises(ValidationError, match=f"the service_definition uses the {named}"):
        DeploymentRequest.model_validate(_request(**definition))


# --- ECS's service deployment records ------------------------------------------------------

ARN = "arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/myapp/r9i43YFjvgF_xlg7m2eJ1r"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _record(status: str, **more: Any) -> ServiceDeploymentView:
    return ServiceDeploymentView({"serviceDeploymentArn": ARN, "status": status, **more})


@pytest.mark.parametrize(
    ("status", "failure_type", "words"),
    [
        ("ROLLBACK_REQUESTED", "DeploymentRolledBack", "ECS rolled back"),
        ("ROLLBACK_IN_PROGRESS", "DeploymentRolledBack", "ECS rolled back"),
        ("ROLLBACK_SUCCESSFUL", "DeploymentRolledBack", "ECS rolled back"),
        ("ROLLBACK_FAILED", "DeploymentFailed", "ECS could not roll back"),
        ("STOPPED", "DeploymentFailed", "ECS stopped"),
        ("STOP_REQUESTED", "DeploymentFailed", "ECS stopped"),
    ],
)
def test_ecs_record_names_the_failure(status, failure_type, words):
    verdict = record_verdict(_record(status, statusReason="breaker"), "myapp")
    assert verdict == (
        failure_type,
        f"{words} service deployment {ARN} of service myapp ({status}): breaker",
    )


@pytest.mark.parametrize("status", ["SUCCESSFUL", "IN_PROGRESS", "PENDING", "SOMETHING_NEW"])
def test_a_record_that_names_no_failure_leaves_describe_services_verdict(status):
    assert record_verdict(_record(status), "myapp") is None


def test_the_rollbacks_own_reason_follows_ecs_status_reason_once():
    both = _record("ROLLBACK_SUCCESSFUL", statusReason="a", rollback={"reason": "b"})
    assert both.reason == "a; b"
    assert _record("STOPPED", statusReason="a", rollback={"reason": "a"}).reason == "a"
    assert record_verdict(_record("STOPPED"), "myapp") == (
        "DeploymentFailed",
        f"ECS stopped service deployment {ARN} of service myapp (STOPPED)",
    )


def test_the_record_of_this_runs_deployment_is_the_one_created_closest_to_it():
    def brief(name: str, seconds: float) -> dict[str, Any]:
        return {
            "serviceDeploymentArn": name,
            "status": "STOPPED",
            "createdAt": NOW + timedelta(seconds=seconds),
        }

    found = closest_record([brief("later", 30), brief("ours", 0.4), brief("before", -20)], NOW)
    assert found is not None and found.arn == "ours"
    assert closest_record([brief("far", 120)], NOW) is None


class Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, line: str) -> None:
        self.warnings.append(line)


class RefusingEcs:
    """An account or partition without the Service Deployments API."""

    def describe_service_deployments(self, **params: Any) -> dict[str, Any]:
        error = {"Error": {"Code": "UnknownOperationException", "Message": "no"}}
        raise botocore.exceptions.ClientError(error, "DescribeServiceDeployments")

    list_service_deployments = describe_service_deployments


def test_without_the_api_the_record_is_none_and_the_wait_says_so():
    log = Log()
    assert find_record(RefusingEcs(), "prod", "myapp", ARN, NOW, log) is None
    assert find_record(RefusingEcs(), "prod", "myapp", None, NOW, log) is None
    assert find_record(RefusingEcs(), "prod", "myapp", None, None, log) is None  # no call
    assert (
        log.warnings
        == [
            "ECS's service deployment record of myapp is not available "
            "(UnknownOperationException); going by DescribeServices alone"
        ]
        * 2
    )


# --- The first look's refusals and the canary's load balancers -------------------------------


def _main(**changes: Any) -> ServiceSnapshot:
    fields: dict[str, Any] = {
        "arn": "arn:aws:ecs:us-east-1:123456789012:service/prod/myapp",
        "status": "ACTIVE",
        "task_definition": "arn:aws:ecs:us-east-1:123456789012:task-definition/f:1",
        "desired_count": 3,
        "running_count": 3,
        "deployment_configuration": None,
        **changes,
    }
    return ServiceSnapshot(**fields)


def _model(**extra: Any) -> DeploymentRequest:
    return DeploymentRequest.model_validate({**_request(), **extra})


def test_the_main_services_controller_and_strategy_are_refused_as_ecs_reports_them():
    reason = refusal(_model(), _main(deployment_controller="CODE_DEPLOY"), None, None)
    assert reason is not None and "CODE_DEPLOY" in reason
    blue_green = _main(deployment_configuration={"strategy": "BLUE_GREEN"})
    reason = refusal(_model(), blue_green, None, None)
    assert reason is not None and "BLUE_GREEN" in reason
    assert refusal(_model(), _main(deployment_controller="ECS"), None, None) is None


def test_the_autoscaling_range_holds_unless_the_autoscalers_count_is_kept():
    out_of_range = ScalableTarget(resource_id="service/prod/myapp", min_capacity=1, max_capacity=2)
    assert refusal(_model(), _main(), out_of_range, None) is not None
    keep = _model(rolling={"same_as_running_instances": True})
    assert refusal(keep, _main(), out_of_range, None) is None


def test_the_canary_takes_the_main_services_load_balancers_unless_the_request_has_its_own():
    assert canary_load_balancers(_model(), _main(load_balancers=BEHIND), None) == BEHIND
    own = _model(service_definition={"desiredCount": 3, "loadBalancers": BEHIND})
    assert canary_load_balancers(own, _main(), None) is None  # the definition's own are used
    assert canary_load_balancers(_model(), _main(), None) is None
    assert canary_load_balancers(_model(), None, None) is None


def test_a_weighted_canary_registers_in_its_own_group_only():
    traffic = {"listener_rule_arn": RULE, "canary_target_group_arn": CANARY_TG, "weight_percent": 5}
    request = _model(canary={"traffic": traffic})
    rule = ListenerRule(
        rule_arn=RULE,
        listener_arn="x",
        is_default=False,
        actions=[{"Type": "forward", "TargetGroupArn": TG}],
    )
    assert refusal(request, _main(load_balancers=BEHIND), None, rule) is None
    assert canary_load_balancers(request, _main(load_balancers=BEHIND), rule) == [
        {"targetGroupArn": CANARY_TG, "containerName": "web", "containerPort": 80}
    ]
    reason = refusal(request, _main(), None, rule)
    assert reason is not None and "takes its container name and port" in reason
