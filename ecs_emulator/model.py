"""The scheduler's own view of a service: deployments and their tasks.

moto's objects only get a projection of this (``ServiceHandle.publish``), so the rules of
ECS's scheduler live here and in ``scheduler.py``, not in moto's models.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .answers import AnswerModel
from .moto_elbv2 import TargetGroupHandle
from .moto_internals import DEFAULT_CPU_UNITS, TaskHandle
from .wsgi_util import epoch_seconds, without_none

PRIMARY, ACTIVE = "PRIMARY", "ACTIVE"
IN_PROGRESS, COMPLETED, FAILED = "IN_PROGRESS", "COMPLETED", "FAILED"
STARTING_STATES = ("PROVISIONING", "PENDING")
# A target's states in DescribeTargetHealth.
INITIAL, HEALTHY, UNHEALTHY, DRAINING = "initial", "healthy", "unhealthy", "draining"
ROLLING = "ROLLING"


def new_deployment_id() -> str:
    return f"ecs-svc/{random.randint(10**18, 10**19 - 1)}"


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass
class Target:
    """One task's registration in one target group; ``until`` is when its current state ends
    (``initial``: the health check verdict; ``draining``: deregistration)."""

    group: TargetGroupHandle
    id: str
    port: int
    state: str
    until: float


@dataclass
class EmulatedTask:
    """One task and its timeline (monotonic seconds).

    Service tasks run until ECS or a user stops them (``exit_after`` None). A standalone task
    exits by itself ``exit_after`` seconds after RUNNING: its containers report ``exit_code``
    if their image is ``exit_image`` (the one whose tag asked for a failure), else 0.
    """

    handle: TaskHandle
    fault: str | None
    fault_image: str
    ready_at: float
    provisioned_at: float
    exit_after: float | None = None
    exit_code: int = 0
    exit_image: str | None = None
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    exit_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    load_balanced: bool = False
    targets: list[Target] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """Counts against maximumPercent: ECS still wants it running."""
        return self.desired_status == "RUNNING"

    @property
    def running(self) -> bool:
        """Counted in runningCount, whatever its targets say."""
        return self.active and self.last_status == "RUNNING"

    @property
    def healthy(self) -> bool:
        """What minimumHealthyPercent and steady state count: RUNNING, and behind a load
        balancer only once every target of the task is healthy."""
        if not self.running:
            return False
        if not self.load_balanced:
            return True
        return bool(self.targets) and all(target.state == HEALTHY for target in self.targets)

    @property
    def starting(self) -> bool:
        return self.active and self.last_status in STARTING_STATES


@dataclass
class ServiceRevision:
    """The configuration a deployment runs (DescribeServiceRevisions); a rollback runs the
    revision of the deployment it returns to."""

    arn: str
    service_arn: str
    cluster_arn: str
    task_definition: str
    launch_type: str | None
    platform_version: str | None
    load_balancers: list[dict[str, Any]]
    network_configuration: dict[str, Any] | None
    container_images: list[dict[str, str]]
    created_at: datetime = field(default_factory=now_utc)

    def as_api(self) -> dict[str, Any]:
        return without_none(
            {
                "serviceRevisionArn": self.arn,
                "serviceArn": self.service_arn,
                "clusterArn": self.cluster_arn,
                "taskDefinition": self.task_definition,
                "launchType": self.launch_type,
                "platformVersion": self.platform_version,
                "loadBalancers": self.load_balancers,
                "networkConfiguration": self.network_configuration,
                "containerImages": self.container_images,
                "createdAt": epoch_seconds(self.created_at),
            }
        )


@dataclass
class Deployment:
    """An ECS deployment (``ecs-svc/...``) and the tasks it started."""

    task_definition: str
    desired_count: int
    fault: str | None = None
    fault_image: str = ""
    load_balancers: list[dict[str, Any]] = field(default_factory=list)
    # How its tasks answer the emulator's traffic (by image tag), and what each reserves (set
    # from the task definition when the deployment is made).
    answers: AnswerModel = field(default_factory=AnswerModel)
    cpu_units: float = DEFAULT_CPU_UNITS
    memory_mb: float = 0.0
    revision: ServiceRevision | None = None
    id: str = field(default_factory=new_deployment_id)
    status: str = PRIMARY
    rollout_state: str = IN_PROGRESS
    rollout_state_reason: str = ""
    failed_tasks: int = 0
    created_at: datetime = field(default_factory=now_utc)
    updated_at: datetime = field(default_factory=now_utc)
    tasks: list[EmulatedTask] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rollout_state_reason = f"ECS deployment {self.id} in progress."

    def active_tasks(self) -> list[EmulatedTask]:
        return [t for t in self.tasks if t.active]

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "taskDefinition": self.task_definition,
            "desiredCount": self.desired_count,
            "pendingCount": sum(t.starting for t in self.tasks),
            "runningCount": sum(t.running for t in self.tasks),
            "failedTasks": self.failed_tasks,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "rolloutState": self.rollout_state,
            "rolloutStateReason": self.rollout_state_reason,
        }


@dataclass
class DeploymentPolicy:
    """deploymentConfiguration with ECS's defaults; the fields the scheduler does not use
    (``strategy``, ``bakeTimeInMinutes``, ``alarms``...) are kept as given in ``other``."""

    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: bool = False
    rollback: bool = False
    other: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, config: dict[str, Any] | None) -> DeploymentPolicy:
        config = dict(config or {})
        breaker = config.pop("deploymentCircuitBreaker", None) or {}
        return cls(
            minimum_healthy_percent=int(config.pop("minimumHealthyPercent", 100)),
            maximum_percent=int(config.pop("maximumPercent", 200)),
            circuit_breaker=bool(breaker.get("enable", False)),
            rollback=bool(breaker.get("rollback", False)),
            other=config,
        )

    def as_api(self) -> dict[str, Any]:
        return {
            "deploymentCircuitBreaker": {"enable": self.circuit_breaker, "rollback": self.rollback},
            "maximumPercent": self.maximum_percent,
            "minimumHealthyPercent": self.minimum_healthy_percent,
            **self.other,
        }

    @property
    def strategy(self) -> str:
        return str(self.other.get("strategy") or ROLLING)

    def min_healthy(self, desired: int) -> int:
        return math.ceil(desired * self.minimum_healthy_percent / 100)

    def max_tasks(self, desired: int) -> int:
        return math.floor(desired * self.maximum_percent / 100)


def failure_threshold(desired: int) -> int:
    """ECS's circuit breaker: half the desired count, at least 3, at most 200."""
    return min(200, max(3, math.ceil(desired / 2)))
