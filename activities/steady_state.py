"""When is a service's deployment done, still going, or beyond saving? The pure rules.

`wait_for_steady_state` polls DescribeServices and must tell, from one answer alone, whether
this run's deployment is steady, still rolling, or failed for good. Those rules live here,
apart from ECS calls, logging and heartbeats, so they can be read on their own and tested on
recorded DescribeServices responses without an emulator or a Temporal server.

The views only read the response dicts botocore returns (as fabfuel/ecs-deploy's do); they
copy nothing and never change them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

FailureType = Literal["ServiceGone", "DeploymentRolledBack", "DeploymentFailed", "TasksFailed"]


@dataclass(frozen=True)
class DeploymentView:
    """One entry of a service's `deployments`."""

    raw: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.raw["id"])

    @property
    def status(self) -> str:
        """PRIMARY (the one ECS is rolling out), ACTIVE (an older one draining) or INACTIVE."""
        return str(self.raw["status"])

    @property
    def task_definition(self) -> str:
        return str(self.raw["taskDefinition"])

    @property
    def running(self) -> int:
        return int(self.raw["runningCount"])

    @property
    def desired(self) -> int:
        return int(self.raw["desiredCount"])

    @property
    def failed_tasks(self) -> int:
        """Tasks of this deployment that stopped before they ran well (0 if ECS says none)."""
        return int(self.raw.get("failedTasks", 0))

    @property
    def rollout_state(self) -> str | None:
        """IN_PROGRESS, COMPLETED or FAILED; None where ECS reports none (e.g. old services)."""
        state = self.raw.get("rolloutState")
        return None if state is None else str(state)

    @property
    def rollout_state_reason(self) -> str:
        return str(self.raw.get("rolloutStateReason", ""))

    @property
    def rollout_completed(self) -> bool:
        """A deployment without a rolloutState counts as completed: ECS sets none for services
        that do not use its rolling-update tracking, and those could never finish otherwise."""
        return self.raw.get("rolloutState", "COMPLETED") == "COMPLETED"

    @property
    def created_at(self) -> datetime | None:
        """ECS's own time for the deployment's start: a later wait logs events from here on."""
        return self.raw.get("createdAt")


@dataclass(frozen=True)
class ServiceView:
    """One service of a DescribeServices answer."""

    raw: Mapping[str, Any]

    @property
    def name(self) -> str:
        return str(self.raw["serviceName"])

    @property
    def arn(self) -> str:
        return str(self.raw["serviceArn"])

    @property
    def status(self) -> str:
        """ACTIVE, DRAINING (being deleted) or INACTIVE (deleted, still described)."""
        return str(self.raw["status"])

    @property
    def is_active(self) -> bool:
        return self.status == "ACTIVE"

    @property
    def task_definition(self) -> str:
        return str(self.raw["taskDefinition"])

    @property
    def running(self) -> int:
        return int(self.raw["runningCount"])

    @property
    def desired(self) -> int:
        return int(self.raw["desiredCount"])

    @property
    def deployments(self) -> tuple[DeploymentView, ...]:
        return tuple(DeploymentView(d) for d in self.raw.get("deployments", []))

    @property
    def primary_deployment(self) -> DeploymentView | None:
        """The deployment ECS is rolling out now: a rollback by ECS makes a new PRIMARY one."""
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    @property
    def failed_tasks(self) -> int:
        """Failed tasks of the primary deployment: older ones' failures are not this run's."""
        primary = self.primary_deployment
        return primary.failed_tasks if primary else 0

    def is_rolled_back(self, task_definition_arn: str) -> bool:
        """True when the service no longer rolls out `task_definition_arn`: ECS's circuit
        breaker (or someone else) made a deployment of another revision the primary one."""
        primary = self.primary_deployment
        return primary is None or primary.task_definition != task_definition_arn


@dataclass(frozen=True)
class Steady:
    """This run's deployment is the only one, fully running and COMPLETED."""

    running: int
    desired: int
    deployment_id: str


@dataclass(frozen=True)
class Waiting:
    """Not there yet, nothing wrong: tasks are still starting, or they all run while older
    deployments drain or ECS has not marked the rollout COMPLETED."""

    running: int
    desired: int

    @property
    def tasks_pending(self) -> bool:
        return self.running != self.desired


@dataclass(frozen=True)
class Failed:
    """The wait can never succeed; `failure_type` and `message` are the activity's failure.

    `stopped_tasks_of` names the deployment whose stopped tasks explain the failure: the
    activity asks ECS for their stoppedReasons and appends them to the message.
    """

    failure_type: FailureType
    message: str
    stopped_tasks_of: str | None = None


SteadyStateDecision = Steady | Waiting | Failed


def decide_steady_state(
    service: Mapping[str, Any] | None,
    service_name: str,
    task_definition_arn: str,
    max_failed_tasks: int,
) -> SteadyStateDecision:
    """Where the deployment of `task_definition_arn` to `service_name` stands, from one
    DescribeServices answer (`service` is None when ECS has no such service).

    The checks run in this order because an earlier one explains the later ones: a service
    that is gone has no deployment to judge; a rolled-back one's failed tasks belong to a
    deployment that is no longer primary; ECS's own FAILED verdict says more than a count.
    """
    view = ServiceView(service) if service is not None else None
    if view is None or not view.is_active:
        state = view.status if view is not None else "missing"
        return Failed(
            "ServiceGone", f"Service {service_name} is {state} while waiting for steady state"
        )
    primary = view.primary_deployment
    if primary is None or view.is_rolled_back(task_definition_arn):
        running = primary.task_definition if primary else "nothing"
        return Failed(
            "DeploymentRolledBack",
            f"ECS rolled back service {service_name}: its primary deployment runs {running}, "
            f"not {task_definition_arn}",
        )
    if primary.rollout_state == "FAILED":
        return Failed(
            "DeploymentFailed",
            f"ECS marked deployment {primary.id} of service {service_name} FAILED: "
            f"{primary.rollout_state_reason}",
            stopped_tasks_of=primary.id,
        )
    if primary.failed_tasks >= max_failed_tasks:
        return Failed(
            "TasksFailed",
            f"{primary.failed_tasks} task(s) of service {service_name} failed to start",
            stopped_tasks_of=primary.id,
        )
    all_running = primary.running == primary.desired
    if all_running and len(view.deployments) == 1 and primary.rollout_completed:
        return Steady(primary.running, primary.desired, primary.id)
    return Waiting(primary.running, primary.desired)
