"""ECS's own reasons for a deployment's stopped tasks (`CannotPullContainerError`, `Task failed
ELB health checks in (target-group ...)`), for the text of a wait's failure."""

from __future__ import annotations

from typing import Any

from activities.aws import aws_errors


def stop_reasons(client: Any, cluster: str, service: str, deployment_id: str) -> str:
    """`: reason; other reason` for the stopped tasks the deployment started, or ``."""
    with aws_errors("ListTasks"):
        arns = client.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED")[
            "taskArns"
        ]
    if not arns:
        return ""
    with aws_errors("DescribeTasks"):
        tasks = client.describe_tasks(cluster=cluster, tasks=arns[:100])["tasks"]
    reasons = sorted(
        {
            t.get("stoppedReason", "")
            for t in tasks
            if t.get("startedBy") == deployment_id and t.get("stoppedReason")
        }
    )
    return f": {'; '.join(reasons)}" if reasons else ""
