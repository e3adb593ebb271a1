"""The emulator finds one ECS service by its key, not by moto's scan
(ecs_emulator.moto_service_lookup): the same service, or the same error, for every name and
ARN moto's scan accepts or refuses."""

from __future__ import annotations

import pytest
from moto.ecs.exceptions import ServiceNotFoundException
from moto.ecs.models import EC2ContainerServiceBackend

from ecs_emulator import moto_service_lookup

ACCOUNT, REGION = "123456789012", "us-east-1"
CONTAINERS = [{"name": "app", "image": "nginx", "memory": 128}]


@pytest.fixture
def backend() -> EC2ContainerServiceBackend:
    """Two clusters with a service of the same name in each, and one more service."""
    backend = EC2ContainerServiceBackend(REGION, ACCOUNT)
    definition = backend.register_task_definition("f", CONTAINERS)
    for cluster in ("blue", "green"):
        backend.create_cluster(cluster)
        backend.create_service(cluster, "api", 0, task_definition_str=definition.arn)
    backend.create_service("green", "worker", 0, task_definition_str=definition.arn)
    return backend


def test_the_emulator_finds_services_by_key_once_installed() -> None:
    moto_service_lookup.install()
    moto_service_lookup.install()  # twice changes nothing
    method = getattr(EC2ContainerServiceBackend, moto_service_lookup.REPLACED_LOOKUP_METHOD)
    assert method is moto_service_lookup._found_by_key


def test_a_name_or_an_arn_finds_the_service_motos_scan_finds(
    backend: EC2ContainerServiceBackend,
) -> None:
    asked = 0
    for key, service in backend.services.items():
        cluster = key.split(":")[0]
        for reference in (service.name, service.arn):
            found = moto_service_lookup._found_by_key(backend, cluster, reference)
            assert found is moto_service_lookup._ORIGINAL(backend, cluster, reference)
            assert (found.cluster_name, found.name) == (cluster, service.name)
            asked += 1
    assert asked == 6


@pytest.mark.parametrize(
    ("cluster", "reference"),
    [
        ("blue", "worker"),  # in the other cluster only
        ("blue", "arn:aws:ecs:us-east-1:123456789012:service/green/worker"),
        ("blue", "arn:aws:ecs:us-east-1:123456789012:service/green/api"),  # same name, not blue's
        ("green", "nothing"),
    ],
)
def test_what_motos_scan_refuses_is_refused_the_same_way(
    backend: EC2ContainerServiceBackend, cluster: str, reference: str
) -> None:
    with pytest.raises(ServiceNotFoundException):
        moto_service_lookup._ORIGINAL(backend, cluster, reference)
    with pytest.raises(ServiceNotFoundException):
        moto_service_lookup._found_by_key(backend, cluster, reference)
