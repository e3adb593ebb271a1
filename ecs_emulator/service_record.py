"""The scheduler's state for one moto service object: its deployments (``model.py``), its
event log, and ECS's records of its rollouts (``service_deployments.py``).

It sits above both, so the scheduler's model and ECS's records need not know each other:
a record watches its deployments, and the service finds a deployment's record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .events import EventLog
from .model import Deployment, DeploymentPolicy, EmulatedTask
from .moto_internals import ServiceHandle
from .service_deployments import ServiceDeployment


@dataclass
class ServiceRecord:
    """Scheduler state for one moto service object."""

    handle: ServiceHandle
    policy: DeploymentPolicy
    deployments: list[Deployment]
    events: EventLog = field(default_factory=EventLog)
    network_configuration: dict[str, Any] | None = None
    last_completed: Deployment | None = None
    steady: bool = False
    draining_tasks: list[EmulatedTask] = field(default_factory=list)
    # False for CODE_DEPLOY / EXTERNAL controllers and non-ROLLING strategies: stored and
    # described, never scheduled.
    managed: bool = True
    history: list[ServiceDeployment] = field(default_factory=list)

    @property
    def primary(self) -> Deployment:
        return self.deployments[0]

    def all_tasks(self) -> list[EmulatedTask]:
        return [t for d in self.deployments for t in d.tasks]

    def service_deployment_of(self, deployment: Deployment) -> ServiceDeployment | None:
        """The service deployment that rolls `deployment` out or back (newest first: the
        deployment asked about is nearly always the primary, the newest record's)."""
        return next(
            (
                record
                for record in reversed(self.history)
                if deployment is record.target or deployment is record.rollback
            ),
            None,
        )
