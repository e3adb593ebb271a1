"""Every moto private or internal name the emulator relies on, in one place.

moto's public surface is its HTTP API; the scheduler needs more (backend objects, their
attribute names, the WSGI dispatcher). Keeping all of it here (task objects in
``moto_tasks``, re-exported below; ELBv2 target groups in ``moto_elbv2``; the response
serializer's attribute names in ``moto_serializer``) means a moto
upgrade breaks exactly these modules, and ``tests/e2e/test_emulator_moto_internals.py``
says what broke.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.ecs.models import ecs_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from .moto_tasks import (
    ClusterRef,
    TaskDefinitionInfo,
    TaskHandle,
    _EmulatedTask,
    _new_task,
    _refresh_cluster_counts,
    find_cluster,
)

__all__ = [
    "ClusterRef",
    "ServiceHandle",
    "ServiceRef",
    "TaskDefinitionInfo",
    "TaskHandle",
    "_EmulatedTask",
    "container_images",
    "find_cluster",
    "find_service",
    "iter_service_objects",
    "moto_request_handler",
    "moto_wsgi_app",
    "replace_once",
    "reset_moto",
    "resolve_task_definition",
    "task_reservation",
    "without_default_amis",
]

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
    "cluster_arn",
    "load_balancers",
    "deployment_controller",
)
# Written on moto's Service for DescribeServices; moto's serializer reads any member of the
# response shape from the attribute of the same name in snake_case.
SERVICE_PUBLISHED_ATTRIBUTES = (
    "deployment_configuration",
    "current_service_deployment",
    "current_service_revisions",
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
    "cluster_name",
    "task_definition_arn",
    "container_instance_arn",
    "launch_type",
    "capacity_provider_name",
    "platform_version",
    "overrides",
    "tags",
    "attachments",
)
CONTAINER_ATTRIBUTES = (
    "last_status",
    "exitCode",
    "name",
    "image",
    "container_arn",
    "task_arn",
    "cpu",
    "memory",
    "environment",
    "command",
    "health_status",
)
BACKEND_ATTRIBUTES = ("services", "tasks", "clusters", "describe_task_definition")
CLUSTER_ATTRIBUTES = (
    "name",
    "arn",
    "running_tasks_count",
    "pending_tasks_count",
    "default_capacity_provider_strategy",
)
# Attributes read on moto's TaskDefinition.
TASK_DEFINITION_ATTRIBUTES = (
    "arn",
    "family",
    "network_mode",
    "container_definitions",
    "cpu",
    "memory",
)
# The CPU a task reserves when neither its task definition nor its containers say: one vCPU.
# (Memory is always said: ECS and moto refuse a task definition without it.)
DEFAULT_CPU_UNITS = 1024.0


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


def without_default_amis() -> None:
    """moto's own setting (unless already set): no catalogue of default AMIs. The emulator's EC2
    is a VPC, two subnets and a security group; the catalogue (thousands of images, each with
    an EBS volume and snapshot) was built on every reset, twice, and was three quarters of the
    CPU of a reset, which the end-to-end tests make before each test."""
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


def replace_once(owner: type, name: str, replacement: Any, marker: str) -> None:
    """Replace moto's `owner.name` with `replacement`, once per process (moto's classes are
    process-wide, like its state): `marker`, set on `owner`, says it was done."""
    if getattr(owner, marker, False):
        return
    setattr(owner, name, replacement)
    setattr(owner, marker, True)


def reset_moto() -> None:
    """Drop every account and region of every moto backend, like ``/moto-api/reset``."""
    moto_api_backend.reset()


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


def iter_service_objects() -> Iterator[tuple[str, str, Any, Any]]:
    """Every ECS service of every account and region moto has created so far, as the parts of
    its ServiceRef (account, region, backend, service): the scheduler's tick makes a ServiceRef
    only for a service it may change."""
    for account_id, regions in list(ecs_backends.items()):
        for region, backend in list(regions.items()):
            for service in list(backend.services.values()):
                yield account_id, region, backend, service


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


def container_images(ref: ServiceRef, task_definition_arn: str) -> list[dict[str, str]]:
    """``{"containerName", "image"}`` per container definition, in order."""
    definition = ref.backend.describe_task_definition(task_definition_arn)
    return [
        {"containerName": c.get("name", ""), "image": c.get("image", "")}
        for c in definition.container_definitions
    ]


def task_reservation(ref: ServiceRef, task_definition_arn: str) -> tuple[float, float]:
    """(CPU units, MiB) a task of this definition reserves: the task-level `cpu` and `memory`,
    else the sum over its containers (`memory`, else `memoryReservation`); CPU defaults to
    one vCPU."""
    definition = ref.backend.describe_task_definition(task_definition_arn)
    containers = definition.container_definitions
    cpu = float(definition.cpu or sum(float(c.get("cpu") or 0) for c in containers))
    memory = float(
        definition.memory
        or sum(float(c.get("memory") or c.get("memoryReservation") or 0) for c in containers)
    )
    return cpu or DEFAULT_CPU_UNITS, memory


class ServiceHandle:
    """Reads and writes the moto Service attributes the scheduler owns."""

    def __init__(self, ref: ServiceRef) -> None:
        self._ref = ref
        self._service = ref.service

    @property
    def name(self) -> str:
        return self._service.name

    @property
    def account_id(self) -> str:
        return self._ref.account_id

    @property
    def region(self) -> str:
        return self._ref.region

    @property
    def cluster(self) -> str:
        return self._service.cluster_name

    @property
    def arn(self) -> str:
        return self._service.arn

    @property
    def cluster_arn(self) -> str:
        return self._service.cluster_arn

    @property
    def launch_type(self) -> str | None:
        return self._service.launch_type or None

    @property
    def platform_version(self) -> str | None:
        return self._service.platform_version or None

    @property
    def deployment_controller(self) -> str:
        """ECS, CODE_DEPLOY or EXTERNAL (moto defaults to ECS)."""
        return (self._service.deployment_controller or {}).get("type") or "ECS"

    @property
    def load_balancers(self) -> list[dict[str, Any]]:
        return list(self._service.load_balancers or [])

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
        current_service_deployment: str | None = None,
        current_service_revisions: list[dict[str, Any]] | None = None,
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
        service.current_service_deployment = current_service_deployment
        service.current_service_revisions = current_service_revisions

    def start_task(self, task_definition_arn: str, started_by: str) -> TaskHandle:
        """Create a moto task for this service and register it so moto's APIs see it."""
        backend = self._ref.backend
        return _new_task(
            backend,
            backend.clusters[self.cluster],
            backend.describe_task_definition(task_definition_arn),
            group=f"service:{self.name}",
            started_by=started_by,
            launch_type=self._service.launch_type or "",
            platform_version=self._service.platform_version,
            network=self.network_configuration,
        )

    def refresh_cluster_counts(self) -> None:
        """moto's own cluster counters drift on UpdateService; recount from the tasks."""
        _refresh_cluster_counts(self._ref.backend, self.cluster)
