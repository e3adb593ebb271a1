"""moto's lookup of one ECS service by name or ARN, by its key instead of a scan.

moto's `EC2ContainerServiceBackend._get_service` (behind UpdateService and DeleteService)
compares the name, then the ARN, of every service of the account and region until one
matches, and it builds each ARN anew (the partition, an environment variable). A release train
of 1,000 leaves 2,000 services there (each with its canary): the scan was a tenth of the
emulator's CPU in the train bench (py-spy, docs/release-train-bench.md). moto keeps its
services by "cluster:name", as its own DescribeServices reads them, and the name is the last
part of an ARN. A service found by that key passes the scan's own test, so it is the one the
scan would find; a name or ARN that finds none is left to moto's scan, which answers as before.

Split out of ``moto_internals`` like ``moto_service_render``;
``tests/e2e/test_emulator_service_lookup.py`` checks it against moto's scan.
"""

from __future__ import annotations

from typing import Any

from moto.ecs.models import EC2ContainerServiceBackend

from .moto_internals import replace_once

# Replaced on moto's ECS backend (checked by the test).
REPLACED_LOOKUP_METHOD = "_get_service"
_ORIGINAL = EC2ContainerServiceBackend._get_service
_INSTALLED = "_ecs_emulator_finds_services_by_key"


def install() -> None:
    """Find services by their key from now on (process-wide, like moto's state; installing
    twice changes nothing)."""
    replace_once(EC2ContainerServiceBackend, REPLACED_LOOKUP_METHOD, _found_by_key, _INSTALLED)


def _found_by_key(backend: EC2ContainerServiceBackend, cluster_str: str, service_str: str) -> Any:
    """The service moto's scan would find, read by its key; moto's scan when the key finds
    none (its not-found error included)."""
    cluster = backend._get_cluster(cluster_str)
    service = backend.services.get(f"{cluster.name}:{service_str.split('/')[-1]}")
    if service is not None and (service.name == service_str or service.arn == service_str):
        return service
    return _ORIGINAL(backend, cluster_str, service_str)
