"""Application Auto Scaling held still during the rolling deploy: the pure rules.

A main service with a scalable target (`ecs:service:DesiredCount`) would have its desired
count changed by the autoscaler in the middle of a rollout, as Harness avoids by removing the
scaling policies. Here dynamic scaling (target tracking, step scaling) is suspended through
the target's `SuspendedState` for the rolling deploy and the recorded state is put back after
success, rollback or cancel. Scheduled scaling is left as it was: a scheduled action is a
planned capacity change (a morning scale-up) that a rollout must not postpone, and ECS takes a
new desired count in the middle of a deployment in its stride.
"""

from __future__ import annotations

from pydantic import Field

from ecs_canary.strict import StrictModel

SERVICE_NAMESPACE = "ecs"
SCALABLE_DIMENSION = "ecs:service:DesiredCount"


def scalable_resource_id(cluster: str, service: str) -> str:
    """`service/<cluster name>/<service>`: Application Auto Scaling's id for an ECS service
    (the cluster by name, also when the request gives its ARN)."""
    return f"service/{cluster.rsplit('/', 1)[-1]}/{service}"


class SuspendedState(StrictModel):
    """A scalable target's `SuspendedState`, field by field."""

    dynamic_scaling_in: bool = False
    dynamic_scaling_out: bool = False
    scheduled_scaling: bool = False

    @classmethod
    def from_api(cls, state: dict[str, bool] | None) -> SuspendedState:
        state = state or {}
        return cls(
            dynamic_scaling_in=bool(state.get("DynamicScalingInSuspended", False)),
            dynamic_scaling_out=bool(state.get("DynamicScalingOutSuspended", False)),
            scheduled_scaling=bool(state.get("ScheduledScalingSuspended", False)),
        )

    def to_api(self) -> dict[str, bool]:
        return {
            "DynamicScalingInSuspended": self.dynamic_scaling_in,
            "DynamicScalingOutSuspended": self.dynamic_scaling_out,
            "ScheduledScalingSuspended": self.scheduled_scaling,
        }

    def held_still(self) -> SuspendedState:
        """Dynamic scaling suspended both ways; scheduled scaling as it was."""
        return self.model_copy(update={"dynamic_scaling_in": True, "dynamic_scaling_out": True})


class ScalableTarget(StrictModel):
    """The main service's scalable target as DescribeScalableTargets answered."""

    resource_id: str
    min_capacity: int
    max_capacity: int
    suspended: SuspendedState = Field(default_factory=SuspendedState)


class ScalingHoldState(StrictModel):
    """What `status` shows of auto scaling: the target as recorded, whether this run has
    suspended its dynamic scaling now, and why a restore failed (the run goes on)."""

    target: ScalableTarget
    suspended: bool = False
    restore_failure: str | None = None


def capacity_refusal(target: ScalableTarget, desired: int, service: str) -> str | None:
    """A desired count the autoscaler would not keep: refused before anything changes."""
    if target.min_capacity <= desired <= target.max_capacity:
        return None
    return (
        f"desiredCount {desired} is outside the auto scaling range of service {service} "
        f"[{target.min_capacity}, {target.max_capacity}] (scalable target {target.resource_id}); "
        "change the count or the range, or set rolling.same_as_running_instances"
    )


def scaling_text(state: ScalingHoldState) -> str:
    """`dynamic scaling suspended (range 2-10)` and the like, for `status` and the Web UI."""
    target = state.target
    span = f"range {target.min_capacity}-{target.max_capacity}"
    if state.restore_failure:
        return f"dynamic scaling NOT restored ({span}): {state.restore_failure}"
    if state.suspended:
        return f"dynamic scaling suspended for the rolling deploy ({span})"
    return f"scalable target {target.resource_id} ({span})"
