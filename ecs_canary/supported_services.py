"""Which services ecs-canary can deploy: ECS's own deployment controller, rolling strategy.

A CODE_DEPLOY service is deployed through CodeDeploy (UpdateService may not change its task
definition), an EXTERNAL one through task sets, and ECS runs BLUE_GREEN, LINEAR and CANARY
deployments itself: a rolling update on top of any of them is not what the user asked for.
Such services are refused before anything changes: the request's `service_definition` by
validation, an existing main service as soon as DescribeServices shows it.
"""

from __future__ import annotations

from typing import Any

SUPPORTED_CONTROLLER = "ECS"
SUPPORTED_STRATEGY = "ROLLING"


def unsupported_reason(controller: str | None, strategy: str | None, whose: str) -> str | None:
    """Why `whose` (e.g. `service myapp`) cannot be deployed, naming the controller or the
    strategy; None when it can. Absent values are ECS's defaults (ECS, ROLLING)."""
    if controller not in (None, SUPPORTED_CONTROLLER):
        return (
            f"{whose} uses the {controller} deployment controller; ecs-canary deploys only "
            f"services with the {SUPPORTED_CONTROLLER} deployment controller"
        )
    if strategy not in (None, SUPPORTED_STRATEGY):
        return (
            f"{whose} uses the {strategy} deployment strategy; ecs-canary runs its own "
            f"canary and deploys only services with the {SUPPORTED_STRATEGY} strategy"
        )
    return None


def controller_and_strategy(service: dict[str, Any]) -> tuple[str | None, str | None]:
    """A CreateService request's or a DescribeServices answer's controller and strategy."""
    controller = (service.get("deploymentController") or {}).get("type")
    strategy = (service.get("deploymentConfiguration") or {}).get("strategy")
    return controller, strategy
