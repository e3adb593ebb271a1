"""Every moto private or internal name the emulator relies on, in one place.

moto's public surface is its HTTP API; the scheduler needs more (backend objects, their
attribute names, the WSGI dispatcher). Keeping all of it here means a moto upgrade breaks
exactly one module, and ``tests/test_emulator_moto_internals.py`` says what broke.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.ecs.models import Task, ecs_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

SUPPORTED_MOTO_VERSION = "5.2.5"

# Attribute names read or written on moto's ECS model objects (checked by the test).
SERVICE_ATTRIBUTES = (
    "name",
    "cluster_name",
    "arn",
    "status",
    "desired_count",
    "running_count",
    "pending_count",
    "deployments",
    "events",
    "task_definition",
    "network_configuration",
    "launch_type",
    "platform_version",
)
TASK_ATTRIBUTES = (
    "id",
    "task_arn",
    "desired_status",
    "last_status",
    "stopped_reason",
    "containers",
    "group",
    "started_by",
)
CONTAINER_ATTRIBUTES = ("last_status", "exitCode")
BACKEND_ATTRIBUTES = ("services", "tasks", "clusters", "describe_task_definition")
CLUSTER_ATTRIBUTES = ("name", "running_tasks_count", "pending_tasks_count")


class _HostCachingDispatcher(DomainDispatcherApplication):
    """moto's dispatcher lists its package directory on every request to match the Host header
    to a backend; the answer for a host never changes, so it is worked out once."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backend_by_host: dict[str | None, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host not in self._backend_by_host:
            self._backend_by_host[host] = super().get_backend_for_host(host)
        return self._backend_by_host[host]


def moto_wsgi_app() -> Any:
    """moto's own server application: routes every AWS service by request signature."""
    return _HostCachingDispatcher()


def moto_request_handler() -> type:
    """moto's werkzeug request handler (keeps header spellings moto expects)."""
    return MotoRequestHandler


def reset_moto() -> None:
    """Drop every account and region of every moto backend, like ``/moto-api/reset``."""
    moto_api_backend.reset()


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
class ServiceRef:
    """Where a moto service lives, and the object itself."""

    account_id: str
    region: str
    backend: Any
    service: Any

    @property
    def key(self) -> int:
        return id(self.service)


def iter_services() -> Iterator[ServiceRef]:
    """Every ECS service of every account and region moto has created so far."""
    for account_id, regions in list(ecs_backends.items()):
        for region, backend in list(regions.items()):
            for service in list(backend.services.values()):
                yield ServiceRef(account_id, region, backend, service)


def find_service(account_id: str, region: str, cluster: str, name: str) -> ServiceRef | None:
    """The live service object behind an ARN's parts, if moto has it."""
    regions = ecs_backends.get(account_id)
    if regions is None or region not in regions:
        return None
    backend = regions[region]
    service = backend.services.get(f"{cluster}:{name}")
    return ServiceRef(account_id, region, backend, service) if service else None


def resolve_task_definition(ref: ServiceRef, task_definition: str) -> str:
    """Full ARN for a family, family:revision or ARN (moto raises ClientException if unknown)."""
    return ref.backend.describe_task_definition(task_definition).arn


def task_definition_images(ref: ServiceRef, task_definition_arn: str) -> list[str]:
    definition = ref.backend.describe_task_definition(task_definition_arn)
    return [c.get("image", "") for c in definition.container_definitions]


class ServiceHandle:
    """Reads and writes the moto Service attributes the scheduler owns."""

    def __init__(self, ref: ServiceRef) -> None:
        self._ref = ref
        self._service = ref.service

    @property
    def name(self) -> str:
        return self._service.name

    @property
    def cluster(self) -> str:
        return self._service.cluster_name

    @property
    def arn(self) -> str:
        return self._service.arn

    @property
    def status(self) -> str:
        return self._service.status

    @status.setter
    def status(self, value: str) -> None:
        self._service.status = value

    @property
    def desired_count(self) -> int:
        return int(self._service.desired_count or 0)

    @desired_count.setter
    def desired_count(self, value: int) -> None:
        self._service.desired_count = value

    @property
    def task_definition(self) -> str | None:
        return self._service.task_definition

    @task_definition.setter
    def task_definition(self, arn: str) -> None:
        self._service.task_definition = arn

    @property
    def network_configuration(self) -> dict[str, Any] | None:
        return self._service.network_configuration or None

    def set_deployment_configuration(self, configuration: dict[str, Any]) -> None:
        """moto keeps no deploymentConfiguration on create; its serializer picks this name."""
        self._service.deployment_configuration = configuration

    def publish(
        self,
        deployments: list[dict[str, Any]],
        running: int,
        pending: int,
        events: list[dict[str, Any]],
    ) -> None:
        service = self._service
        for deployment in deployments:
            deployment.setdefault("launchType", service.launch_type)
            deployment.setdefault("platformVersion", service.platform_version)
            deployment.setdefault("networkConfiguration", self.network_configuration)
        service.deployments = deployments
        service.running_count = running
        service.pending_count = pending
        service.events = events

    def start_task(self, task_definition_arn: str, started_by: str) -> TaskHandle:
        """Create a moto task for this service and register it so moto's APIs see it."""
        backend = self._ref.backend
        cluster = backend.clusters[self.cluster]
        definition = backend.describe_task_definition(task_definition_arn)
        network = self.network_configuration
        task = _EmulatedTask(
            cluster=cluster,
            # moto 5.2.5 crashes building awsvpc tasks (its ENI lacks private_dns_name), so
            # moto sees a bridge-mode copy and the ENI attachment is described here instead.
            task_definition=_without_awsvpc(definition),
            container_instance_arn=None,
            resource_requirements=None,
            backend=backend,
            group=f"service:{self.name}",
            launch_type=self._service.launch_type or "",
            started_by=started_by,
            platform_version=self._service.platform_version,
        )
        if network:
            task.network_configuration = network
            task.attachments = [_eni_attachment(network)]
        backend.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        return TaskHandle(task)

    def refresh_cluster_counts(self) -> None:
        """moto's own cluster counters drift on UpdateService; recount from the tasks."""
        backend = self._ref.backend
        cluster = backend.clusters.get(self.cluster)
        if cluster is None:
            return
        tasks = backend.tasks.get(cluster.name, {}).values()
        cluster.running_tasks_count = sum(t.last_status == "RUNNING" for t in tasks)
        cluster.pending_tasks_count = sum(
            t.last_status in ("PROVISIONING", "PENDING") for t in tasks
        )


def _without_awsvpc(definition: Any) -> Any:
    clone = copy.copy(definition)
    clone.network_mode = "bridge"
    return clone


def _eni_attachment(network: dict[str, Any]) -> dict[str, Any]:
    subnet = (network.get("awsvpcConfiguration") or {}).get("subnets", ["subnet-unknown"])[0]
    address = f"10.42.{random.randint(0, 255)}.{random.randint(1, 254)}"
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
    """Writes the lifecycle fields of one emulated moto task."""

    def __init__(self, task: Any) -> None:
        self._task = task

    @property
    def id(self) -> str:
        return self._task.id

    @property
    def arn(self) -> str:
        return self._task.task_arn

    def set_status(self, last_status: str, desired_status: str) -> None:
        self._task.last_status = last_status
        self._task.desired_status = desired_status
        for container in self._task.containers:
            container.last_status = last_status

    def set_times(self, **times: datetime) -> None:
        """createdAt, startedAt, stoppingAt, stoppedAt... as snake_case attributes."""
        for name, value in times.items():
            setattr(self._task, name, value)

    def set_stopped(self, reason: str, stop_code: str, exit_code: int | None) -> None:
        self._task.stopped_reason = reason
        self._task.stop_code = stop_code
        for container in self._task.containers:
            container.exitCode = exit_code
            container.reason = reason if exit_code is None else None
