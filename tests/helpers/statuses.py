"""Statuses as the `status` query reports them, for tests of what is built from one (words,
notifications) without running a deployment: `myapp` on `prod` at its open gate, changed by
keyword, or finished with a result."""

from __future__ import annotations

from typing import Any

from ecs_canary.models import DeploymentStatus


def deployment_status(**changes: Any) -> DeploymentStatus:
    """`myapp`'s canary steady (1/1) at the open gate; keywords replace top-level fields."""
    status: dict[str, Any] = {
        "stage": "verification",
        "gate_open": True,
        "cluster": "prod",
        "main_service": "myapp",
        "canary_service": "myappCanary",
        "task_definition_arn": None,
        "running_count": 1,
        "desired_count": 1,
        "recent_events": [],
        "decision": None,
        "approvals": [],
        "attempts": [],
        "stages": [],
        "outcome": None,
    }
    return DeploymentStatus.model_validate({**status, **changes})


def finished_status(
    outcome: str,
    reason: str | None = None,
    canary_deleted: bool = True,
    stages: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> DeploymentStatus:
    """The status once the run ended with `outcome`, its result included."""
    status = deployment_status(
        stage="finished", gate_open=False, outcome=outcome, stages=stages or [], **changes
    )
    result = {
        "outcome": outcome,
        "reason": reason,
        "cluster": status.cluster,
        "main_service": status.main_service,
        "canary_service": status.canary_service,
        "task_definition_arn": status.task_definition_arn,
        "previous_task_definition_arn": None,
        "canary_deleted": canary_deleted,
        "decision": status.decision,
        "attempts": [],
        "stages": status.stages,
    }
    return DeploymentStatus.model_validate({**status.model_dump(), "result": result})
