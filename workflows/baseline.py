"""Canary analysis's baseline service, as the workflow handles it.

Recorded at the first look from the main service it copies (its task definition is the run's
rollback target); created, waited for and deleted side by side with the canary by the
workflow (`workflows.ecs_calls.together`), so that it starts when the canary starts and is
gone whenever the canary is. What it is and why: ecs_canary.baseline.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.baseline import BaselineState
    from ecs_canary.models import ServiceChange, ServiceSnapshot, Stage
    from workflows.run_part import RunPart


class BaselineService(RunPart):
    """One run's baseline; every method is a no-op without `verification.analysis`."""

    def record(self, main: ServiceSnapshot | None) -> None:
        """Remember the baseline to create: the main service's task definition, at the
        canary's count (a first deployment is refused before anything changes)."""
        name = self._request.baseline_service_name
        if name is None or main is None:
            return
        self._state.baseline = BaselineState(
            service=name,
            task_definition_arn=main.task_definition,
            desired_count=self._request.canary.desired_count,
        )

    async def create(
        self, tags: dict[str, str], load_balancers: list[dict[str, Any]] | None
    ) -> ServiceChange | None:
        """Create the baseline; marked as possibly existing before the call, so that whatever
        ends the run from here on deletes it."""
        baseline = self._state.baseline
        if baseline is None:
            return None
        assert baseline.task_definition_arn is not None, "recorded from the main service"
        self._state.baseline_may_exist = True
        return await self._calls.create_service(
            baseline.service,
            Stage.CANARY_DEPLOY,
            baseline.task_definition_arn,
            self._request.canary.desired_count,
            tags,
            load_balancers,
        )

    async def wait_steady(self, change: ServiceChange | None) -> None:
        """Wait for the baseline to be steady, like the canary, and show what the wait saw."""
        baseline = self._state.baseline
        if baseline is None or change is None:
            return
        assert baseline.task_definition_arn is not None, "recorded from the main service"
        steady = await self._calls.wait_for_steady_state(
            baseline.service,
            Stage.CANARY_DEPLOY,
            change,
            baseline.task_definition_arn,
            self._request.stage_timeouts.canary_deploy,
            alarms=[],
            done_message=f"Created Service {baseline.service} with Arn {{arn}}",
        )
        baseline.running_count, baseline.desired_count = steady.running_count, steady.desired_count
        baseline.targets = steady.targets
        self._show()

    async def remove(self, stage: Stage) -> None:
        """Delete the baseline, if it may exist, and wait until it is INACTIVE."""
        name = self._request.baseline_service_name
        if name is None or not self._state.baseline_may_exist:
            return
        await self._calls.remove_service(name, stage, f"Baseline service {name} deleted")
        self._state.baseline_may_exist = False
        if self._state.baseline is not None:
            self._state.baseline.deleted = True
            self._show()
