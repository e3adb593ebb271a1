"""Service events in ECS's own words (clients and humans grep for these)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

MAX_EVENTS = 100
FAILED_TO_START = "tasks failed to start."


def started_tasks(service: str, task_ids: list[str]) -> str:
    tasks = " ".join(f"(task {task_id})" for task_id in task_ids)
    return f"(service {service}) has started {len(task_ids)} tasks: {tasks}."


def stopped_tasks(service: str, task_ids: list[str]) -> str:
    tasks = " ".join(f"(task {task_id})" for task_id in task_ids)
    return f"(service {service}) has stopped {len(task_ids)} running tasks: {tasks}."


def deployment_completed(service: str, deployment_id: str) -> str:
    return f"(service {service}) (deployment {deployment_id}) deployment completed."


def steady_state(service: str) -> str:
    return f"(service {service}) has reached a steady state."


def deployment_failed(service: str, deployment_id: str) -> str:
    return (
        f"(service {service}) deployment {deployment_id} deployment failed: tasks failed to start."
    )


def deployment_failed_rolling_back(service: str, deployment_id: str) -> str:
    return f"(service {service}) (deployment {deployment_id}) deployment failed: {FAILED_TO_START}"


def rolling_back(service: str, deployment_id: str) -> str:
    return f"(service {service}) rolling back to deployment {deployment_id}."


def registered_targets(service: str, count: int, target_group_arn: str) -> str:
    return f"(service {service}) registered {count} targets in (target-group {target_group_arn})"


def began_draining(service: str, task_count: int) -> str:
    return f"(service {service}) has begun draining connections on {task_count} tasks."


def deregistered_targets(service: str, count: int, target_group_arn: str) -> str:
    return f"(service {service}) deregistered {count} targets in (target-group {target_group_arn})"


def unhealthy_target(service: str, task_id: str, port: int, target_group_arn: str) -> str:
    """ECS's wording for an awsvpc (Fargate-style) task that fails its ELB health checks."""
    return (
        f"(service {service}) (task {task_id}) (port {port}) is unhealthy in "
        f"(target-group {target_group_arn}) due to (reason Health checks failed)."
    )


class EventLog:
    """Newest-first event list, capped like ECS's describe output."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, message: str) -> None:
        event = {"id": str(uuid.uuid4()), "createdAt": datetime.now(UTC), "message": message}
        self.entries.insert(0, event)
        del self.entries[MAX_EVENTS:]
