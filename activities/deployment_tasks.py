"""A deployment's tasks (those ECS started for it: `startedBy` is its id), described: the
running ones for its targets (activities.target_health), the stopped ones for ECS's own
reasons a wait failed (`CannotPullContainerError`, `Task failed ELB health checks in
(target-group ...)`)."""

from __future__ import annotations

from typing import Any

from activities.aws import aws_errors

# DescribeTasks takes at most 100 tasks per call (and ListTasks returns pages of 100).
_DESCRIBE_TASKS_BATCH = 100


def deployment_tasks(
    client: Any,
    cluster: str,
    service: str,
    deployment_id: str,
    desired_status: str,
    most: int | None = None,
) -> list[dict[str, Any]]:
    """The service's tasks in `desired_status` that `deployment_id` started; of the first
    `most` ECS lists, when given (a failure's reasons need no more than a page)."""
    arns: list[str] = []
    token: dict[str, str] = {}
    while most is None or len(arns) < most:
        with aws_errors("ListTasks"):
            page = client.list_tasks(
                cluster=cluster, serviceName=service, desiredStatus=desired_status, **token
            )
        arns += page["taskArns"]
        if not page.get("nextToken"):
            break
        token = {"nextToken": page["nextToken"]}
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns[:most]), _DESCRIBE_TASKS_BATCH):
        with aws_errors("DescribeTasks"):
            batch = arns[start : start + _DESCRIBE_TASKS_BATCH]
            tasks += client.describe_tasks(cluster=cluster, tasks=batch)["tasks"]
    return [task for task in tasks if task.get("startedBy") == deployment_id]


def stop_reasons(client: Any, cluster: str, service: str, deployment_id: str) -> str:
    """`: reason; other reason` for the stopped tasks the deployment started, or ``."""
    stopped = deployment_tasks(
        client, cluster, service, deployment_id, "STOPPED", most=_DESCRIBE_TASKS_BATCH
    )
    reasons = sorted({t["stoppedReason"] for t in stopped if t.get("stoppedReason")})
    return f": {'; '.join(reasons)}" if reasons else ""
