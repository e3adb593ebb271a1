"""Verification steps, run in order against the steady canary (see `ecs_canary.steps`).

Each step is one activity (run_task, http, metrics) or one child workflow (workflow), shown in
the Web UI as `Verify <name> (<type>)`. A step's verdict is data, not an exception: a failed
check is a failed step, and so is a step whose activity or child workflow failed. Cancelling
the runner (a rejection, an alarm, a cancelled run) cancels the running step and waits for it
to stop, so no test task or check outlives its deployment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from activities.verification_steps import VerificationActivities
    from ecs_canary.gate import Gate
    from ecs_canary.models import DeploymentRequest
    from ecs_canary.names import RUN_ID_TAG, WORKFLOW_ID_TAG
    from ecs_canary.steps import (
        CheckWorkflowInput,
        HttpStep,
        HttpStepInput,
        MetricsStepInput,
        RunTaskStep,
        RunTaskStepInput,
        StepState,
        StepVerdict,
        VerificationStep,
        WorkflowStep,
    )
    from workflows.calls import check_workflow, was_cancelled
    from workflows.failures import failure_reason
    from workflows.run_part import RunPart

ArgT = TypeVar("ArgT")


def pending_steps(request: DeploymentRequest) -> list[StepState]:
    return [StepState(name=s.name, type=s.type) for s in request.verification.steps]


class StepRunner(RunPart):
    """Runs a deployment's verification steps and keeps their states (in the run's state)
    current."""

    @property
    def _states(self) -> list[StepState]:
        return self._state.verification_steps

    @property
    def _arn(self) -> str:
        arn = self._state.task_definition_arn
        assert arn is not None, "registered during the canary deploy"
        return arn

    @property
    def any_failed(self) -> bool:
        return any(state.state == "failed" for state in self._states)

    async def run(self, gate: Gate) -> None:
        """Each step in order. With `on_step_failure: reject` the first failed step rejects the
        canary; with `gate` the remaining steps still run and a person decides."""
        settings = self._request.verification
        try:
            for step, state in zip(settings.steps, self._states, strict=True):
                await self._run.hold.before_next_step()  # paused: no next step
                if gate.decision is not None:
                    break
                verdict = await self._run_one(step, state)
                if not verdict.passed and settings.on_step_failure == "reject":
                    await self._run.hold.before_next_step()  # paused: no decision of its own
                    if gate.decision is not None:
                        break
                    gate.decide_automatically(
                        "reject",
                        "step",
                        f"verification step {step.name} failed: {verdict.summary or 'no summary'}",
                        workflow.now(),
                        by=f"step:{step.name}",
                    )
                    break
        finally:
            self._skip_the_rest("not run: the canary was decided first")

    def _skip_the_rest(self, why: str) -> None:
        for state in self._states:
            if state.state == "pending":
                state.state, state.summary = "cancelled", why

    async def _run_one(self, step: VerificationStep, state: StepState) -> StepVerdict:
        state.state, state.started_at = "running", workflow.now()
        try:
            verdict = await self._verdict(step)
        except (asyncio.CancelledError, ActivityError, ChildWorkflowError) as err:
            if not isinstance(err, asyncio.CancelledError) and not was_cancelled(err):
                verdict = StepVerdict(passed=False, summary=failure_reason(err)[1])
            else:
                state.state, state.summary = "cancelled", "stopped: the verification was ended"
                state.ended_at = workflow.now()
                raise asyncio.CancelledError() from err
        except Exception as err:  # a check that failed to run fails its step
            verdict = StepVerdict(passed=False, summary=failure_reason(err)[1])
        state.state = "passed" if verdict.passed else "failed"
        state.summary, state.ended_at = verdict.summary, workflow.now()
        return verdict

    async def _verdict(self, step: VerificationStep) -> StepVerdict:
        request, info = self._request, workflow.info()
        if isinstance(step, WorkflowStep):
            return await self._check_workflow(step)
        if isinstance(step, RunTaskStep):
            return await self._activity(
                step,
                VerificationActivities.run_task_step,
                RunTaskStepInput(
                    region=request.region,
                    cluster=request.cluster,
                    step=step,
                    canary_task_definition_arn=self._arn,
                    service_definition=request.service_definition,
                    started_by=f"{info.run_id}:{step.name}",
                    tags={WORKFLOW_ID_TAG: info.workflow_id, RUN_ID_TAG: info.run_id},
                    poll_interval_seconds=request.poll_interval_seconds,
                ),
            )
        if isinstance(step, HttpStep):
            return await self._activity(
                step, VerificationActivities.http_step, HttpStepInput(step=step)
            )
        return await self._activity(
            step,
            VerificationActivities.metrics_step,
            MetricsStepInput(
                region=request.region,
                step=step,
                canary_service=request.canary_service_name,
                main_service=request.service_name,
                poll_interval_seconds=request.poll_interval_seconds,
            ),
        )

    async def _activity(
        self,
        step: VerificationStep,
        activity: Callable[[VerificationActivities, ArgT], StepVerdict],
        arg: ArgT,
    ) -> StepVerdict:
        """One step activity. It enforces the step's timeout itself (see
        `CallPolicies.verification_step`)."""
        return await workflow.execute_activity_method(
            activity,
            arg,
            **self._run.calls.policies.verification_step(
                step.timeout_seconds, f"Verify {step.name} ({step.type})"
            ),
        )

    async def _check_workflow(self, step: WorkflowStep) -> StepVerdict:
        """A check of the user's own; passes when it returns an object with "passed": true."""
        request = self._request
        result = await workflow.execute_child_workflow(
            step.workflow_type,
            CheckWorkflowInput(
                cluster=request.cluster,
                region=request.region,
                service=request.service_name,
                canary_service=request.canary_service_name,
                task_definition_arn=self._arn,
                input=step.input,
            ).model_dump(mode="json"),
            **check_workflow(
                f"{workflow.info().workflow_id}/verify/{step.name}",
                step.task_queue,
                step.timeout_seconds,
                f"Verify {step.name} ({step.type})",
            ),
        )
        if not isinstance(result, dict):
            return StepVerdict(
                passed=False, summary=f"the check returned {result!r}, not an object"
            )
        summary = result.get("summary")
        return StepVerdict(
            passed=result.get("passed") is True, summary=None if summary is None else str(summary)
        )
