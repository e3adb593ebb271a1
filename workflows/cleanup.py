"""The run's way out, on the one cleanup path (`EcsCanaryDeployment._end_early`): the
rollback of a main service the rolling deploy touched, and the deletion of the canary and the
baseline wherever they may exist.

The rollback is Harness's ECS Rolling Rollback: the previous task definition, count and
deployment configuration are put back and waited for (a first deployment's service is
removed instead); if that fails too, the failure says where the service was left. A deletion
that fails is logged and never hides the failure that ended the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.models import Stage
    from workflows.baseline import BaselineService
    from workflows.calls import together
    from workflows.ecs_calls import EcsSteps
    from workflows.failures import StageFailure, failure_reason
    from workflows.run_part import RunContext, RunPart


class Cleanup(RunPart):
    """Puts the run's services back the way out: the main service rolled back, the canary
    and the baseline deleted."""

    def __init__(self, run: RunContext) -> None:
        super().__init__(run)
        self._ecs = EcsSteps(run)
        self._baseline = BaselineService(run)

    async def roll_back(self, reason: str) -> None:
        """Restore the previous task definition, count and configuration; on a first
        deployment remove the service that never became healthy. StageFailure
        (`RollbackFailed`) if that fails, saying where the service was left."""
        request, previous = self._request, self._state.previous
        self._run.enter(Stage.ROLLBACK)
        workflow.logger.warning(
            f"Rolling back service {request.service_name}: {reason}",
            extra=self._run.log_context(),
        )
        try:
            if previous is None:
                await self._ecs.remove_service(request.service_name, Stage.ROLLBACK)
                return
            change = await self._ecs.update_service(
                Stage.ROLLBACK,
                previous.task_definition,
                previous.desired_count,
                previous.deployment_configuration,
            )
            await self._ecs.wait_steady(
                request.service_name,
                change,
                previous.task_definition,
                request.stage_timeouts.rollback,
            )
        except Exception as err:
            raise StageFailure(
                Stage.ROLLBACK,
                f"rollback of service {request.service_name} failed: {failure_reason(err)[1]}; "
                f"{await self._ecs.where_service_was_left(request.service_name)}. "
                f"The rolling deploy had failed because: {reason}",
                "RollbackFailed",
            ) from err

    async def remove_canary_and_baseline(self) -> None:
        """Delete the canary and the baseline, side by side, where they may exist."""
        request, state, stage = self._request, self._state, self._state.stage
        removals = []
        if state.canary_may_exist:
            canary = request.canary_service_name
            removals.append(
                self._removal(
                    f"canary service {canary}", lambda: self._ecs.remove_service(canary, stage)
                )
            )
        if state.baseline_may_exist:
            baseline = request.baseline_service_name
            removals.append(
                self._removal(f"baseline service {baseline}", lambda: self._baseline.remove(stage))
            )
        await together(*removals)

    async def _removal(self, what: str, removal: Callable[[], Awaitable[None]]) -> None:
        """One removal of the cleanup path, started here (never left unawaited by a cancel
        that comes first); a failure is logged, never hides the one that ended the run."""
        workflow.logger.info(f"Cleaning up {what}", extra=self._run.log_context())
        try:
            await removal()
        except Exception as err:
            workflow.logger.error(
                f"Could not delete {what}: {failure_reason(err)[1]}", extra=self._run.log_context()
            )
