"""The main service's auto scaling, held still during the rolling deploy.

The scalable target is read with the run's first look at the services (no step of its own);
dynamic scaling is suspended just before the main service is updated and the recorded
`SuspendedState` is put back after success, rollback or cancel. A restore that fails is
logged and shown in `status`, and never turns a finished rollout into a rollback. The rules
(which state, which range): ecs_canary.scaling.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.autoscaling import ScalingActivities
    from ecs_canary.aws_inputs import SetSuspendedStateInput
    from ecs_canary.scaling import ScalableTarget, ScalingHoldState, SuspendedState
    from workflows.ecs_calls import EcsSteps
    from workflows.failures import failure_reason
    from workflows.run_part import RunContext, RunPart


class ScalingHold(RunPart):
    """One run's hold on the main service's scalable target; every method is a no-op for a
    service without one."""

    def __init__(self, run: RunContext) -> None:
        super().__init__(run)
        self._ecs = EcsSteps(run)


    def record(self, target: ScalableTarget | None) -> None:
        self._state.scaling = ScalingHoldState(target=target) if target is not None else None

    async def suspend(self) -> None:
        """Suspend dynamic scaling. Marked suspended before the call, so a cancel that arrives
        while it is in flight still puts the recorded state back."""
        hold = self._state.scaling
        if hold is None:
            return
        hold.suspended = True
        held = hold.target.suspended.held_still()
        await self._set(held, "dynamic scaling suspended for the rolling deploy")

    async def restore(self) -> None:
        """Put the recorded SuspendedState back; a failure is reported, not raised."""
        hold = self._state.scaling
        if hold is None or not hold.suspended:
            return
        try:
            await self._set(hold.target.suspended, "suspended state put back as recorded")
        except Exception as err:
            hold.restore_failure = failure_reason(err)[1]
            workflow.logger.error(
                f"Could not put back the auto scaling of service {self._request.service_name} "
                f"({hold.target.resource_id}): {hold.restore_failure}"
            )
        else:
            hold.suspended = False

    async def rolling_count(self) -> int:
        """The rolling deploy's desired count: the request's, or with
        `rolling.same_as_running_instances` the service's current one, read again once the
        autoscaler is held (it may have changed the count since the run began)."""
        request, previous = self._request, self._state.previous
        assert previous is not None, "an existing service is updated, a new one created"
        if not request.rolling.same_as_running_instances:
            return request.desired_count
        if self._state.scaling is None:
            return previous.desired_count
        name = request.service_name
        found = await self._ecs.describe_services(
            [name], self._state.stage, f"Describe service {name} (its autoscaled count)"
        )
        current = found.services[name]
        return current.desired_count if current is not None else previous.desired_count

    async def _set(self, suspended: SuspendedState, description: str) -> None:
        hold = self._state.scaling
        assert hold is not None
        await self._run.calls.call(
            ScalingActivities.set_suspended_state,
            SetSuspendedStateInput(
                **self._run.location(),
                resource_id=hold.target.resource_id,
                suspended=suspended,
                description=description,
            ),
            summary=f"Auto scaling of {self._request.service_name}: {description}",
        )
