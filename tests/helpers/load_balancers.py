"""Load balancers and auto scaling in the emulator, set up with boto3 as a user would: an
Application Load Balancer whose listener rule forwards to the main service's target group
(and, weighted 0, to the canary's), a main service behind it, and a scalable target.

Imported by module (`from tests.helpers.load_balancers import ...`): only the tests of these
features need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ecs_canary.scaling import SCALABLE_DIMENSION, SERVICE_NAMESPACE, scalable_resource_id
from tests.helpers.deployment_requests import RequestFactory
from tests.helpers.ecs import CLUSTER, existing_service, tasks_of
from tests.helpers.waiting import wait_until_sync

# Target health at test speed: a task's target turns healthy (or unhealthy) this long after
# it runs.
HEALTH_CHECK_SECONDS = 0.3


@contextmanager
def fast_health_checks(emulator: Any, seconds: float = HEALTH_CHECK_SECONDS) -> Iterator[None]:
    """The emulator's health checks at test speed; its setting is put back afterwards."""
    before = emulator.admin.info()["settings"]["health_check_seconds"]
    emulator.admin.settings(health_check_seconds=seconds)
    try:
        yield
    finally:
        emulator.admin.settings(health_check_seconds=before)


@dataclass(frozen=True)
class Balancer:
    """An ALB's listener with a default action and one rule, both forwarding to the main
    target group (the canary's group weighted 0, so the balancer knows it, as ECS requires;
    likewise the canary analysis's baseline group, where one was asked for)."""

    listener_arn: str
    default_rule_arn: str
    rule_arn: str
    main_group: str
    canary_group: str
    baseline_group: str | None = None


def _target_group(elbv2: Any, seed: dict[str, Any], name: str) -> str:
    """An `ip` target group that drains at once (AWS's default delay is 300 s)."""
    arn: str = elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=seed["vpc_id"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "0"}],
    )
    return arn


def main_and_canary_forward(main_group: str, *unused_groups: str) -> list[dict[str, Any]]:
    """A forward action sending everything to the main group, none to the canary's (nor to
    the baseline's)."""
    groups = [
        {"TargetGroupArn": main_group, "Weight": 100},
        *({"TargetGroupArn": group, "Weight": 0} for group in unused_groups),
    ]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


def balancer(
    elbv2: Any, seed: dict[str, Any], name: str = "myapp", baseline: bool = False
) -> Balancer:
    """`<name>-alb` with target groups `<name>-tg` and `<name>-canary-tg` (and, with
    `baseline`, `<name>-baseline-tg`)."""
    alb = elbv2.create_load_balancer(
        Name=f"{name}-alb", Subnets=seed["subnets"], SecurityGroups=[seed["security_group"]]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    main_group = _target_group(elbv2, seed, f"{name}-tg")
    canary_group = _target_group(elbv2, seed, f"{name}-canary-tg")
    baseline_group = _target_group(elbv2, seed, f"{name}-baseline-tg") if baseline else None
    unused = [canary_group, *([baseline_group] if baseline_group else [])]
    forward = main_and_canary_forward(main_group, *unused)
    listener = elbv2.create_listener(
        LoadBalancerArn=alb, Protocol="HTTP", Port=80, DefaultActions=forward
    )["Listeners"][0]["ListenerArn"]
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=forward,
    )["Rules"][0]["RuleArn"]
    (default,) = [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if r["IsDefault"]]
    return Balancer(listener, default["RuleArn"], rule, main_group, canary_group, baseline_group)


def behind(target_group: str) -> list[dict[str, Any]]:
    """`loadBalancers` for the request's container `web` on port 80."""
    return [{"targetGroupArn": target_group, "containerName": "web", "containerPort": 80}]


class _WithServiceDefinition:
    """`requests` whose service definitions carry `extra` as well (e.g. loadBalancers)."""

    def __init__(self, requests: RequestFactory, extra: dict[str, Any]) -> None:
        self._requests, self._extra = requests, extra

    def raw(self, **kwargs: Any) -> dict[str, Any]:
        return self._requests.raw(service_definition=self._extra, **kwargs)


def existing_service_with(
    ecs: Any, requests: RequestFactory, desired: int = 2, **service_definition: Any
) -> str:
    """`existing_service` (myapp at nginx:1.26) created with more of a service definition,
    e.g. `loadBalancers=behind(group)`; returns its task definition ARN."""
    extended: Any = _WithServiceDefinition(requests, service_definition)
    return existing_service(ecs, extended, desired=desired)


def myapp_behind_balancer(
    ecs: Any, elbv2: Any, requests: RequestFactory, baseline: bool = False
) -> Balancer:
    """myapp (2 tasks at nginx:1.26) behind the `myapp-tg` target group of a new `balancer`,
    returned once that group holds exactly its tasks' targets, all healthy."""
    found = balancer(elbv2, requests.seed, baseline=baseline)
    existing_service_with(ecs, requests, loadBalancers=behind(found.main_group))
    wait_until_sync(lambda: only_targets_of(elbv2, found.main_group, ecs, "myapp"), timeout=15)
    return found


def rule_actions(elbv2: Any, rule_arn: str) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = elbv2.describe_rules(RuleArns=[rule_arn])["Rules"][0]["Actions"]
    return actions


def forward_weights(elbv2: Any, rule_arn: str) -> dict[str, int]:
    """Target group ARN -> weight of the rule's forward action."""
    (forward,) = [a for a in rule_actions(elbv2, rule_arn) if a["Type"] == "forward"]
    groups = forward["ForwardConfig"]["TargetGroups"]
    return {group["TargetGroupArn"]: group["Weight"] for group in groups}


def task_addresses(ecs: Any, service: str) -> set[str]:
    """The ENI addresses (target ids) of the service's running tasks."""
    return {
        detail["value"]
        for task in tasks_of(ecs, service, desiredStatus="RUNNING")
        for attachment in task.get("attachments", [])
        for detail in attachment["details"]
        if detail["name"] == "privateIPv4Address"
    }


def healthy_targets(elbv2: Any, target_group: str) -> set[str]:
    found = elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    return {t["Target"]["Id"] for t in found if t["TargetHealth"]["State"] == "healthy"}


def targets(elbv2: Any, target_group: str) -> set[str]:
    found = elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
    return {t["Target"]["Id"] for t in found}


def only_targets_of(elbv2: Any, target_group: str, ecs: Any, service: str) -> bool:
    """The group's targets are exactly the service's running tasks, all healthy (any other
    deployment's have drained)."""
    ours = task_addresses(ecs, service)
    return targets(elbv2, target_group) == healthy_targets(elbv2, target_group) == ours


def scalable_target(
    autoscaling: Any,
    service: str = "myapp",
    min_capacity: int = 1,
    max_capacity: int = 10,
    **suspended: bool,
) -> str:
    """Register the service's DesiredCount as a scalable target; returns its resource id."""
    resource_id = scalable_resource_id(CLUSTER, service)
    autoscaling.register_scalable_target(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceId=resource_id,
        ScalableDimension=SCALABLE_DIMENSION,
        MinCapacity=min_capacity,
        MaxCapacity=max_capacity,
        SuspendedState=suspended,
    )
    return resource_id


def suspended_state(autoscaling: Any, service: str = "myapp") -> dict[str, bool] | None:
    """The service's scalable target's SuspendedState; None when it has no scalable target."""
    found = autoscaling.describe_scalable_targets(
        ServiceNamespace=SERVICE_NAMESPACE, ResourceIds=[scalable_resource_id(CLUSTER, service)]
    )["ScalableTargets"]
    return dict(found[0].get("SuspendedState") or {}) if found else None
