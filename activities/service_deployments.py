"""ECS's own record of a deployment (the Service Deployments API), and what it says about a
wait that DescribeServices shows failing.

DescribeServices tells *that* this run's deployment is no longer the primary one or that ECS
marked it FAILED; it cannot tell whether ECS's circuit breaker rolled it back or someone
else's deployment replaced it. The service deployment can: ROLLBACK_* (ECS rolled it back),
STOPPED (replaced, or stopped by the circuit breaker without rollback), ROLLBACK_FAILED. It is
read once, when the wait ends so, never per poll: DescribeServiceDeployments of the ARN the
change reported (the service's `currentServiceDeployment`), else the deployment that
ListServiceDeployments shows created with this run's. Where ECS keeps no such record (older
accounts, other partitions) or the call is refused, DescribeServices' verdict stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import botocore.exceptions

from activities.aws import aws_error_code
from activities.steady_state import FailureType

ROLLED_BACK = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL"})
STOPPED = frozenset({"STOPPED", "STOP_REQUESTED"})
ROLLBACK_FAILED = "ROLLBACK_FAILED"
# How far ECS's service deployment may be created from the deployment DescribeServices shows.
_SAME_DEPLOYMENT = timedelta(seconds=60)


@dataclass(frozen=True)
class ServiceDeploymentView:
    """A ServiceDeployment (DescribeServiceDeployments) or a ServiceDeploymentBrief
    (ListServiceDeployments): both carry the ARN, status and reason."""

    raw: Mapping[str, Any]

    @property
    def arn(self) -> str:
        return str(self.raw["serviceDeploymentArn"])

    @property
    def status(self) -> str:
        return str(self.raw["status"])

    @property
    def reason(self) -> str:
        """ECS's statusReason, and the rollback's own reason when it gives one."""
        reasons = [self.raw.get("statusReason"), (self.raw.get("rollback") or {}).get("reason")]
        return "; ".join(dict.fromkeys(str(r) for r in reasons if r))


def record_verdict(record: ServiceDeploymentView, service: str) -> tuple[FailureType, str] | None:
    """The failure ECS's record names, or None when it names none (SUCCESSFUL, IN_PROGRESS,
    PENDING: DescribeServices' verdict stands)."""
    why = f": {record.reason}" if record.reason else ""
    of = f"service deployment {record.arn} of service {service} ({record.status})"
    if record.status in ROLLED_BACK:
        return "DeploymentRolledBack", f"ECS rolled back {of}{why}"
    if record.status in STOPPED:
        return "DeploymentFailed", f"ECS stopped {of}{why}"
    if record.status == ROLLBACK_FAILED:
        return "DeploymentFailed", f"ECS could not roll back {of}{why}"
    return None


def closest_record(
    briefs: list[Mapping[str, Any]], created_at: datetime
) -> ServiceDeploymentView | None:
    """The service deployment created closest to this run's deployment, within a minute."""
    near = [b for b in briefs if abs(b["createdAt"] - created_at) <= _SAME_DEPLOYMENT]
    if not near:
        return None
    return ServiceDeploymentView(min(near, key=lambda b: abs(b["createdAt"] - created_at)))


def find_record(
    client: Any,
    cluster: str,
    service: str,
    arn: str | None,
    created_at: datetime | None,
    log: Any,
) -> ServiceDeploymentView | None:
    """This run's service deployment, or None where ECS has none or will not say."""
    try:
        if arn is not None:
            found = client.describe_service_deployments(serviceDeploymentArns=[arn])
            described = found["serviceDeployments"]
            return ServiceDeploymentView(described[0]) if described else None
        if created_at is None:
            return None
        listed = client.list_service_deployments(
            cluster=cluster, service=service, createdAt={"after": created_at - _SAME_DEPLOYMENT}
        )
        return closest_record(listed["serviceDeployments"], created_at)
    except botocore.exceptions.ClientError as err:
        log.warning(
            f"ECS's service deployment record of {service} is not available "
            f"({aws_error_code(err)}); going by DescribeServices alone"
        )
        return None
