"""Fails loudly when a moto upgrade breaks what ecs_emulator.moto_internals relies on."""

from __future__ import annotations

import inspect

import moto
from moto.ecs.models import Cluster, Container, EC2ContainerServiceBackend, Service, Task

from ecs_emulator import moto_internals

CONTAINERS = [{"name": "web", "image": "nginx:1", "memory": 128}]


def _emulated_task(cluster: Cluster, definition: object, backend: object, **extra: object):
    """A task as the emulator's scheduler creates one for service `s`."""
    return moto_internals._EmulatedTask(
        cluster=cluster,
        task_definition=definition,
        container_instance_arn=None,
        resource_requirements=None,
        backend=backend,
        group="service:s",
        **extra,
    )


def test_pinned_moto_version() -> None:
    assert moto.__version__ == moto_internals.SUPPORTED_MOTO_VERSION, (
        "moto changed: re-check every name in ecs_emulator/moto_internals.py, then bump "
        "SUPPORTED_MOTO_VERSION"
    )


def test_wsgi_and_reset_entry_points_exist() -> None:
    assert callable(moto_internals.moto_wsgi_app())
    assert inspect.isclass(moto_internals.moto_request_handler())
    assert callable(moto_internals.moto_api_backend.reset)


def test_task_constructor_takes_the_arguments_we_pass() -> None:
    parameters = inspect.signature(Task.__init__).parameters
    for name in (
        "cluster",
        "task_definition",
        "container_instance_arn",
        "resource_requirements",
        "backend",
        "group",
        "launch_type",
        "started_by",
        "platform_version",
    ):
        assert name in parameters, name
    assert issubclass(moto_internals._EmulatedTask, Task)


def test_model_attributes_exist() -> None:
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    for name in moto_internals.BACKEND_ATTRIBUTES:
        assert hasattr(backend, name), name
    cluster = Cluster("c", "123456789012", "us-east-1")
    backend.clusters["c"] = cluster
    for name in moto_internals.CLUSTER_ATTRIBUTES:
        assert hasattr(cluster, name), name
    definition = backend.register_task_definition("f", CONTAINERS)
    service = Service(cluster, "s", 1, backend, task_definition=definition)
    for name in moto_internals.SERVICE_ATTRIBUTES:
        assert hasattr(service, name), name
    task = _emulated_task(cluster, definition, backend, started_by="ecs-svc/1")
    for name in moto_internals.TASK_ATTRIBUTES:
        assert hasattr(task, name), name
    assert isinstance(task.containers[0], Container)
    for name in moto_internals.CONTAINER_ATTRIBUTES:
        assert hasattr(task.containers[0], name), name


def test_emulated_task_status_is_not_advanced_by_moto() -> None:
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    cluster = Cluster("c", "123456789012", "us-east-1")
    definition = backend.register_task_definition("f", CONTAINERS)
    task = _emulated_task(cluster, definition, backend)
    task.last_status = "PENDING"
    for _ in range(3):
        task.advance()
    assert task.last_status == "PENDING"


def test_service_lookup_key_format() -> None:
    """find_service relies on moto keying services as '<cluster>:<name>'."""
    backend = EC2ContainerServiceBackend("us-east-1", "123456789012")
    backend.create_cluster("c")
    definition = backend.register_task_definition("f", CONTAINERS)
    backend.create_service("c", "s", 0, task_definition_str=definition.arn)
    assert list(backend.services) == ["c:s"]
