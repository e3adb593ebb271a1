"""moto's ECS task objects: creating emulated tasks, reading and writing their fields.

Split out of ``moto_internals`` (which re-exports these names) to keep modules small; the
same rule holds: every moto private name the emulator touches is used here or there, and
``tests/e2e/test_emulator_moto_internals.py`` checks them.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from moto.ecs.models import Container, Task, ecs_backends


class _EmulatedTask(Task):
    """A moto Task whose status only the scheduler moves.

    moto's Task advances itself on each DescribeTasks (manual transitions); the emulator
    drives the lifecycle by time instead, so the status is a plain attribute here.
    """

    @property
    def status(self) -> str | None:
        return getattr(self, "_emulated_status", "PROVISIONING")

    @status.setter
    def status(self, value: str) -> None:
        self._emulated_status = value

    def advance(self) -> None:
        """Ignore moto's describe-driven transitions."""


@dataclass(frozen=True)
class TaskDefinitionInfo:
    """What RunTask and a load-balanced CreateService need to know about a task definition."""

    arn: str
    family: str
    network_mode: str
    container_definitions: list[dict[str, Any]]

    @property
    def images(self) -> list[str]:
        return [c.get("image", "") for c in self.container_definitions]


@dataclass(frozen=True)
class ClusterRef:
    """A live moto cluster and its backend: where standalone tasks are started and found."""

    account_id: str
    region: str
    backend: Any
    cluster: Any

    @property
    def key(self) -> tuple[int, str]:
        return id(self.backend), self.cluster.name

    @property
    def name(self) -> str:
        return self.cluster.name

    @property
    def default_capacity_provider_strategy(self) -> list[dict[str, Any]]:
        return list(self.cluster.default_capacity_provider_strategy or [])

    def task_definition(self, reference: str) -> TaskDefinitionInfo | None:
        """A family, family:revision or ARN; None if moto has no such task definition."""
        try:
            definition = self.backend.describe_task_definition(reference)
        except Exception:  # moto raises its own not-found error, or ValueError on a bad revision
            return None
        return TaskDefinitionInfo(
            definition.arn,
            definition.family,
            definition.network_mode or "bridge",
            list(definition.container_definitions),
        )

    def start_task(
        self,
        task_definition_arn: str,
        *,
        group: str,
        started_by: str | None,
        launch_type: str,
        platform_version: str | None,
        network: dict[str, Any] | None,
        overrides: dict[str, Any] | None,
        tags: list[dict[str, str]] | None,
        capacity_provider_name: str | None,
    ) -> TaskHandle:
        """A standalone task (RunTask), registered so moto's APIs see it."""
        return _new_task(
            self.backend,
            self.cluster,
            self.backend.describe_task_definition(task_definition_arn),
            group=group,
            started_by=started_by,
            launch_type=launch_type,
            platform_version=platform_version,
            network=network,
            overrides=overrides,
            tags=tags,
            capacity_provider_name=capacity_provider_name,
        )

    def tasks(self) -> list[TaskHandle]:
        """Every task of this cluster, oldest first (moto keeps insertion order)."""
        return [TaskHandle(t) for t in self.backend.tasks.get(self.cluster.name, {}).values()]

    def find_task(self, reference: str) -> TaskHandle | None:
        """The task with this ARN or id in this cluster (ECS accepts either)."""
        task_id = reference.split("/")[-1]
        for task in self.tasks():
            if reference == task.arn or task_id == task.id:
                return task
        return None

    def refresh_counts(self) -> None:
        _refresh_cluster_counts(self.backend, self.cluster.name)


def find_cluster(account_id: str, region: str, name: str) -> ClusterRef | None:
    regions = ecs_backends.get(account_id)
    if regions is None or region not in regions:
        return None
    backend = regions[region]
    cluster = backend.clusters.get(name)
    return ClusterRef(account_id, region, backend, cluster) if cluster else None


def _refresh_cluster_counts(backend: Any, cluster_name: str) -> None:
    cluster = backend.clusters.get(cluster_name)
    if cluster is None:
        return
    tasks = backend.tasks.get(cluster.name, {}).values()
    cluster.running_tasks_count = sum(t.last_status == "RUNNING" for t in tasks)
    cluster.pending_tasks_count = sum(t.last_status in ("PROVISIONING", "PENDING") for t in tasks)


def _new_task(
    backend: Any,
    cluster: Any,
    definition: Any,
    *,
    group: str,
    started_by: str | None,
    launch_type: str,
    platform_version: str | None,
    network: dict[str, Any] | None,
    overrides: dict[str, Any] | None = None,
    tags: list[dict[str, str]] | None = None,
    capacity_provider_name: str | None = None,
) -> TaskHandle:
    task: Any = _EmulatedTask(
        cluster=cluster,
        # moto 5.2.5 crashes building awsvpc tasks (its ENI lacks private_dns_name), so
        # moto sees a bridge-mode copy and the ENI attachment is described here instead.
        task_definition=_without_awsvpc(definition),
        container_instance_arn=None,
        resource_requirements=None,
        backend=backend,
        group=group,
        launch_type=launch_type,
        overrides=overrides,
        started_by=started_by or "",
        tags=tags,
        platform_version=platform_version,
        capacity_provider_name=capacity_provider_name,
    )
    # ECS's task ids are 32 lowercase hex characters; moto's are dashed UUIDs.
    task.id = uuid.uuid4().hex
    # ECS omits startedBy and stoppedReason until they have a value; moto writes "".
    task.started_by = started_by or None
    task.stopped_reason = None
    task.containers = _containers(definition, task.task_arn)
    if network:
        task.network_configuration = network
        task.attachments = [_eni_attachment(network)]
    backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
    return TaskHandle(task)


def _containers(definition: Any, task_arn: str) -> list[Any]:
    """One container per container definition (moto builds only the first), with ECS's
    container ARNs and no exit code until the container stops."""
    containers = []
    _, _, _, region, account_id, _ = task_arn.split(":", 5)
    for spec in definition.container_definitions:
        # moto's Container is a CloudFormation model too; its abstract hooks are never used.
        container: Any = cast(Any, Container)(definition)
        container.name = spec.get("name")
        container.image = spec.get("image")
        container.cpu = spec.get("cpu", 0)
        container.memory = spec.get("memory")
        container.environment = spec.get("environment")
        container.command = spec.get("command")
        container.task_arn = task_arn
        container.container_arn = (
            f"arn:aws:ecs:{region}:{account_id}:container/{task_arn.split('/', 1)[1]}/"
            f"{uuid.uuid4()}"
        )
        container.exitCode = None
        # Health checks are not emulated; ECS says UNKNOWN for containers without one.
        container.health_status = "HEALTHY" if spec.get("healthCheck") else "UNKNOWN"
        containers.append(container)
    return containers


def _without_awsvpc(definition: Any) -> Any:
    clone = copy.copy(definition)
    clone.network_mode = "bridge"
    return clone


# Private addresses in the seeded VPC (10.42.0.0/16), handed out in turn: a task's address is
# its target id in an ip target group, so two live tasks must never share one.
_ADDRESSES = itertools.count()


def _next_address() -> str:
    n = next(_ADDRESSES) % (256 * 254)
    return f"10.42.{n // 254}.{n % 254 + 1}"


def _eni_attachment(network: dict[str, Any]) -> dict[str, Any]:
    subnet = (network.get("awsvpcConfiguration") or {}).get("subnets", ["subnet-unknown"])[0]
    address = _next_address()
    return {
        "id": str(uuid.uuid4()),
        "type": "ElasticNetworkInterface",
        "status": "ATTACHED",
        "details": [
            {"name": "subnetId", "value": subnet},
            {"name": "networkInterfaceId", "value": f"eni-{uuid.uuid4().hex[:17]}"},
            {"name": "privateIPv4Address", "value": address},
        ],
    }


class TaskHandle:
    """Reads the fields ListTasks filters on and writes the lifecycle fields of a moto task."""

    def __init__(self, task: Any) -> None:
        self._task = task

    @property
    def id(self) -> str:
        return self._task.id

    @property
    def arn(self) -> str:
        return self._task.task_arn

    @property
    def desired_status(self) -> str:
        return self._task.desired_status

    @property
    def started_by(self) -> str | None:
        return self._task.started_by or None

    @property
    def family(self) -> str:
        """From ``...:task-definition/<family>:<revision>``."""
        return self._task.task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]

    @property
    def launch_type(self) -> str | None:
        return self._task.launch_type or None

    @property
    def container_instance_arn(self) -> str | None:
        return self._task.container_instance_arn

    @property
    def private_ip(self) -> str | None:
        """The ENI's private address of an awsvpc task (its ip target id), else None."""
        for attachment in self._task.attachments or []:
            for detail in attachment.get("details", []):
                if detail.get("name") == "privateIPv4Address":
                    return detail.get("value")
        return None

    def set_status(self, last_status: str, desired_status: str) -> None:
        self._task.last_status = last_status
        self._task.desired_status = desired_status
        for container in self._task.containers:
            container.last_status = last_status

    def set_times(self, **times: datetime) -> None:
        """createdAt, startedAt, stoppingAt, stoppedAt... as snake_case attributes."""
        for name, value in times.items():
            setattr(self._task, name, value)

    def set_stopped(
        self, reason: str, stop_code: str, exit_code: int | None, exit_image: str | None = None
    ) -> None:
        """Containers get ``exit_code`` (all of them, or only those running ``exit_image``:
        the others exited 0); without an exit code they never ran and carry the reason."""
        self._task.stopped_reason = reason
        self._task.stop_code = stop_code
        for container in self._task.containers:
            code = exit_code if exit_image is None or container.image == exit_image else 0
            container.exitCode = code
            container.reason = reason if code is None else None
