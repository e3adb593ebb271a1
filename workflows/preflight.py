"""The run's first look, before it changes anything (after the worker's start checks, whose
platform policy may refuse the request before any ECS call): the services (with the main
one's scalable target) and the weighted canary's listener rule, at once; then what the run
refuses, and where the canary (and canary analysis's baseline) registers.

The refusals are pure functions of what the look found, so each reads and tests on its own;
the workflow fails the run with `Refused` and the reason, with no change made to ECS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.baseline import baseline_target_group
    from ecs_canary.models import DeploymentRequest, ServiceSnapshot, Stage
    from ecs_canary.scaling import ScalableTarget, capacity_refusal
    from ecs_canary.supported_services import unsupported_reason
    from ecs_canary.traffic import ListenerRule, traffic_refusal
    from ecs_canary.traffic import canary_load_balancers as weighted_canary_load_balancers
    from workflows.ecs_calls import EcsSteps
    from workflows.traffic import TrafficShift

REFUSED = "Refused"


@dataclass(frozen=True)
class FirstLook:
    # The main service (None: a first deployment), and whether a canary (a baseline) that an
    # earlier run left is ACTIVE. One this run created is no leftover: an attempt of a
    # workflow task that was lost with its worker made it, and the create finds it.
    main: ServiceSnapshot | None
    canary_left_over: bool
    scalable_target: ScalableTarget | None
    rule: ListenerRule | None
    baseline_left_over: bool = False


async def first_look(request: DeploymentRequest, ecs: EcsSteps, traffic: TrafficShift) -> FirstLook:
    """One round trip: DescribeServices (and the scalable target, in the same step) and, for a
    weighted canary, the listener rule."""
    main, canary, baseline = (
        request.service_name,
        request.canary_service_name,
        request.baseline_service_name,
    )
    services = [main, canary, *([baseline] if baseline else [])]
    found, rule = await asyncio.gather(
        ecs.describe_services(
            services,
            Stage.CANARY_DEPLOY,
            f"Describe services {', '.join(services)}",
            scalable_target_of=main,
        ),
        traffic.read_rule(),
    )
    run_id = workflow.info().run_id

    def left_over(name: str | None) -> bool:
        service = found.services[name] if name is not None else None
        return service is not None and service.created_by_run != run_id

    return FirstLook(
        found.services[main],
        left_over(canary),
        found.scalable_target,
        rule,
        baseline_left_over=left_over(baseline),
    )


def _main_load_balancers(
    request: DeploymentRequest, main: ServiceSnapshot | None
) -> list[dict[str, Any]]:
    """The service's `loadBalancers`: the request's, else the running main service's."""
    given: list[dict[str, Any]] = request.service_definition.get("loadBalancers") or []
    return given or (main.load_balancers if main is not None else [])


def refusal(
    request: DeploymentRequest,
    main: ServiceSnapshot | None,
    scalable: ScalableTarget | None,
    rule: ListenerRule | None,
) -> str | None:
    """Why this deployment must not start, or None."""
    if main is None and request.verification.analysis is not None:
        return (
            "canary analysis compares the canary with a baseline of the running service, and "
            f"service {request.service_name} does not exist yet: deploy it once without "
            "verification.analysis"
        )
    if main is not None:
        strategy = (main.deployment_configuration or {}).get("strategy")
        whose = f"service {request.service_name}"
        if reason := unsupported_reason(main.deployment_controller, strategy, whose):
            return reason
    keeps_count = request.rolling.same_as_running_instances
    if scalable is not None and not keeps_count:  # else the autoscaler's count is kept
        reason = capacity_refusal(scalable, request.desired_count, request.service_name)
        if reason is not None:
            return reason
    traffic = request.canary.traffic
    if traffic is not None:
        assert rule is not None, "read before the refusals"
        if reason := traffic_refusal(
            rule, traffic, baseline_target_group(request.verification.analysis)
        ):
            return reason
        if not _main_load_balancers(request, main):
            return (
                "a traffic-weighted canary takes its container name and port from the "
                f"service's loadBalancers, and neither the service_definition nor service "
                f"{request.service_name} has any"
            )
    return None


def canary_load_balancers(
    request: DeploymentRequest, main: ServiceSnapshot | None, rule: ListenerRule | None
) -> list[dict[str, Any]] | None:
    """The canary's `loadBalancers`, or None to keep the service definition's. Without
    `canary.traffic` the canary joins the main service's target groups (as in Harness); with
    it, only the canary's own target group."""
    traffic = request.canary.traffic
    load_balancers = _main_load_balancers(request, main)
    if traffic is not None:
        assert rule is not None, "read before the canary is created"
        return weighted_canary_load_balancers(load_balancers, rule, traffic.canary_target_group_arn)
    if request.service_definition.get("loadBalancers") or not load_balancers:
        return None
    return load_balancers


def baseline_load_balancers(
    request: DeploymentRequest, main: ServiceSnapshot | None, rule: ListenerRule | None
) -> list[dict[str, Any]] | None:
    """The baseline's `loadBalancers`: the canary's target groups; with `canary.traffic`, only
    `analysis.baseline_target_group_arn`, the group the listener rule weights like the
    canary's."""
    group = baseline_target_group(request.verification.analysis)
    if group is None:
        return canary_load_balancers(request, main, rule)
    assert rule is not None, "read before the baseline is created"
    return weighted_canary_load_balancers(_main_load_balancers(request, main), rule, group)
