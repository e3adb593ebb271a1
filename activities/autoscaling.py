"""Application Auto Scaling: the main service's scalable target, read with the first look at
the services, and its dynamic scaling suspended and put back around the rolling deploy (the
rules: ecs_canary.scaling)."""

from __future__ import annotations

from typing import Any

from activities.aws import AwsClients, aws_errors
from activities.cancellation import sync_activity
from activities.polling import activity_logger
from ecs_canary.aws_inputs import SetSuspendedStateInput
from ecs_canary.scaling import (
    SCALABLE_DIMENSION,
    SERVICE_NAMESPACE,
    ScalableTarget,
    SuspendedState,
    scalable_resource_id,
)


def scalable_target(client: Any, cluster: str, service: str) -> ScalableTarget | None:
    """The service's `ecs:service:DesiredCount` scalable target, or None if it has none."""
    resource_id = scalable_resource_id(cluster, service)
    with aws_errors("DescribeScalableTargets"):
        found = client.describe_scalable_targets(
            ServiceNamespace=SERVICE_NAMESPACE,
            ResourceIds=[resource_id],
            ScalableDimension=SCALABLE_DIMENSION,
        )["ScalableTargets"]
    if not found:
        return None
    target = found[0]
    return ScalableTarget(
        resource_id=resource_id,
        min_capacity=target["MinCapacity"],
        max_capacity=target["MaxCapacity"],
        suspended=SuspendedState.from_api(target.get("SuspendedState")),
    )


class ScalingActivities:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @sync_activity
    def set_suspended_state(self, request: SetSuspendedStateInput) -> None:
        """RegisterScalableTarget with only `SuspendedState`: the range and the policies stay
        as they are, and setting the same state again changes nothing (safe to retry)."""
        log = activity_logger(request)
        log.info(f"Auto scaling of {request.resource_id}: {request.description}")
        with aws_errors("RegisterScalableTarget"):
            self._clients.autoscaling(request.region).register_scalable_target(
                ServiceNamespace=SERVICE_NAMESPACE,
                ResourceId=request.resource_id,
                ScalableDimension=SCALABLE_DIMENSION,
                SuspendedState=request.suspended.to_api(),
            )
