"""Tasks found by the `startedBy` ECS gave them, described: a deployment's (ECS starts a
service's tasks with the deployment's id) for its targets (activities.target_health) and for
ECS's own reasons a wait failed (`CannotPullContainerError`, `Task failed ELB health checks
in (target-group ...)`), and a run_task step's (its token) for their exit codes."""

from __future__ import annotations

from typing import Any

from activities.aws import aws_errors

# DescribeTasks takes at most 100 tasks per call (and ListTasks returns pages of 100).
DESCRIBE_TASKS_BATCH = 100


def task_arns(
    client: Any, cluster: str, started_by: str, desired_status: str, most: int | None = None
) -> list[str]:
    """The cluster's tasks in `desired_status` that were started with `started_by`; the first
    `most` ECS lists, when given. Filtering by `startedBy` rather than by service keeps a
    large service's other deployments (their replaced tasks, say) out of the pages."""
    arns: list[str] = []
    token: dict[str, str] = {}
    while most is None or len(arns) < most:
        with aws_errors("ListTasks"):
            page = client.list_tasks(
                cluster=cluster, startedBy=started_by, desiredStatus=desired_status, **token
            )
        arns += page["taskArns"]
        if not page.get("nextToken"):
            break
        token = {"nextToken": page["nextToken"]}
    return arns[:most]


def described_tasks(client: Any, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
    """DescribeTasks of `arns`, in batches of the most it takes."""
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), DESCRIBE_TASKS_BATCH):
        with aws_errors("DescribeTasks"):
            batch = arns[start : start + DESCRIBE_TASKS_BATCH]
            tasks += client.describe_tasks(cluster=cluster, tasks=batch)["tasks"]
    return tasks


def deployment_tasks(
    client: Any, cluster: str, deployment_id: str, desired_status: str, most: int | None = None
) -> list[dict[str, Any]]:
    """The tasks in `desired_status` that ECS started for `deployment_id`, described."""
    return described_tasks(
        client, cluster, task_arns(client, cluster, deployment_id, desired_status, most)
    )


def stop_reasons(client: Any, cluster: str, deployment_id: str) -> str:
    """`: reason; other reason` for the stopped tasks the deployment started, or ``."""
    stopped = deployment_tasks(client, cluster, deployment_id, "STOPPED", DESCRIBE_TASKS_BATCH)
    reasons = sorted({t["stoppedReason"] for t in stopped if t.get("stoppedReason")})
    return f": {'; '.join(reasons)}" if reasons else ""
