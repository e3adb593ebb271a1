"""Helpers for the emulator tests: polling, clients and small ECS builders.

The emulator itself is the session fixture ``emulator`` from ``tests/conftest.py`` (moto is
process-global, so there is one emulator per test process).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

CLUSTER = "ecs-canary"
START_SECONDS = 0.3
STOP_SECONDS = 0.2


def wait_until(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def client(emulator: Any, service: str = "ecs", region: str = "us-east-1", **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


def register(ecs: Any, family: str = "app", image: str = "nginx:1.25", **extra: Any) -> str:
    containers = [{"name": "web", "image": image, "memory": 128, "essential": True}]
    response = ecs.register_task_definition(family=family, containerDefinitions=containers, **extra)
    return response["taskDefinition"]["taskDefinitionArn"]


def create_service(ecs: Any, name: str, task_definition: str, desired: int, **extra: Any) -> dict:
    extra.setdefault("cluster", CLUSTER)
    return ecs.create_service(
        serviceName=name, taskDefinition=task_definition, desiredCount=desired, **extra
    )["service"]


def describe(ecs: Any, name: str, cluster: str = CLUSTER) -> dict:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def is_stable(service: dict) -> bool:
    """What boto3's services_stable waiter checks."""
    return len(service["deployments"]) == 1 and service["runningCount"] == service["desiredCount"]


def wait_stable(ecs: Any, name: str, cluster: str = CLUSTER, timeout: float = 15.0) -> dict:
    return wait_until(lambda: (s := describe(ecs, name, cluster)) and is_stable(s) and s, timeout)


def tasks_of(ecs: Any, name: str, cluster: str = CLUSTER, **filters: Any) -> list[dict]:
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, **filters)["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def messages(service: dict) -> list[str]:
    return [event["message"] for event in service["events"]]
