"""How the deployment workflow calls ECS: timeouts, heartbeats, shielding, local vs activity task.

Three kinds of call, each with one policy:
- **A single ECS call** (describe, register, create, update, delete) runs as a local activity in
  the workflow task that asks for it: no round trip through the server per call. It is
  shielded: a cancelled run still waits for the call's answer, so no change to ECS is abandoned
  midway and no cleanup races it. botocore retries transient errors inside one attempt;
  Temporal retries the attempt within the rollback stage's time.
- **A wait** (minutes of polling) is an activity task that heartbeats, bounded by its stage's
  timeout, so a dead worker's wait moves to another worker where it stopped.
- **A call beside a wait** is an activity task too: as a local activity it would hold the
  workflow task, and with it the start of the wait, until its answer came.

Every method keeps the SDK's typed signature: the activity method decides the argument and
result types.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError, ChildWorkflowError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.alarms import AlarmActivities
    from activities.ecs import EcsActivities
    from activities.search_attributes import missing_search_attributes
    from ecs_canary import search_attributes as sa
    from ecs_canary.models import (
        AlarmFiring,
        CreateServiceInput,
        DeleteServiceInput,
        DeploymentRequest,
        DescribeServicesInput,
        DescribeTaskDefinitionInput,
        RegisteredTaskDefinition,
        RegisterTaskDefinitionInput,
        ServiceChange,
        ServiceSnapshot,
        ServiceSnapshots,
        Stage,
        StartChecks,
        SteadyState,
        UpdateServiceInput,
        WaitInactiveInput,
        WaitSteadyInput,
        WatchAlarmsInput,
    )
    from workflows.presentation import StageFailure, failure_reason, short_arn

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")

# One ECS request per attempt: botocore has already retried transient errors inside it.
_CALL_TIMEOUT = timedelta(seconds=60)
# A wait heartbeats every poll and the worker sends the latest heartbeat every couple of
# seconds; a busy worker (a hundred deployments on two cores) can be a few seconds late, and a
# wait timed out for that polls twice from then on. A dead worker's wait moves on after this.
_MIN_HEARTBEAT_TIMEOUT = 10.0
_HEARTBEATS_PER_TIMEOUT = 3
_SEARCH_ATTRIBUTE_CHECK_TIMEOUT = timedelta(seconds=30)
# A run's history holds these events when its first workflow task begins (started, task
# scheduled, task started); more mean an earlier attempt of that task may have begun its calls.
_FIRST_TASK_HISTORY_LENGTH = 3


async def settle(task: asyncio.Future[Any]) -> None:
    """Wait for a side task that was cancelled or is no longer needed; its outcome no longer
    matters, only that nothing it started outlives this point."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


async def abandoned_when(condition: Callable[[], bool], step: Awaitable[None]) -> None:
    """Run a step (a wait), abandoning it, cancelled and settled, as soon as `condition()`
    holds (someone rejected the canary) or the run is cancelled."""
    task = asyncio.ensure_future(step)
    try:
        await workflow.wait_condition(lambda: task.done() or condition())
    finally:
        if not task.done():
            task.cancel()
            await settle(task)
    if not task.cancelled():
        task.result()


async def together(*steps: Awaitable[Any]) -> None:
    """Run steps side by side (the canary's and the baseline's). The first failure (or a
    cancel) cancels the others, and is raised once they have settled: nothing one of them
    started outlives this point, so no cleanup races a call still in flight."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
                await settle(task)


def calls_may_repeat() -> bool:
    """Whether a single ECS call of this run may repeat one an earlier worker already made
    (taken at the run's first activation): a run rebuilt from its history (another worker
    took it over, or this one evicted it), or one whose first task was begun before, since a
    local activity's attempts start over on the worker that takes over."""
    return (
        workflow.unsafe.is_replaying()
        or workflow.info().get_current_history_length() > _FIRST_TASK_HISTORY_LENGTH
    )


def was_cancelled(err: ActivityError | ChildWorkflowError) -> bool:
    """An activity or child workflow that ended because it was cancelled."""
    return isinstance(err.cause, CancelledError)


class EcsCalls:
    """A deployment's ECS steps, and the one place that sets their activity options."""

    def __init__(self, request: DeploymentRequest) -> None:
        self._request = request
        self._retried_for = timedelta(seconds=request.stage_timeouts.rollback)
        self._heartbeat_timeout = timedelta(
            seconds=max(
                _MIN_HEARTBEAT_TIMEOUT, _HEARTBEATS_PER_TIMEOUT * request.poll_interval_seconds
            )
        )

    async def call(
        self, activity: Callable[[Any, ArgT], ResultT], arg: ArgT, *, summary: str
    ) -> ResultT:
        """One AWS call inside this workflow task, shielded from the run's cancellation (the
        listener rule's and the scalable target's calls are made the same way)."""
        call = asyncio.ensure_future(
            workflow.execute_local_activity_method(
                activity,
                arg,
                start_to_close_timeout=_CALL_TIMEOUT,
                schedule_to_close_timeout=self._retried_for,
                summary=summary,
            )
        )
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            await settle(call)
            raise

    async def call_beside_wait(
        self, activity: Callable[[Any, ArgT], ResultT], arg: ArgT, *, summary: str
    ) -> ResultT:
        """One ECS call as an activity task, for a call made while a wait runs."""
        return await _plain_cancel(
            workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=_CALL_TIMEOUT,
                schedule_to_close_timeout=self._retried_for,
                summary=summary,
            )
        )

    async def _wait(
        self,
        activity: Callable[[Any, ArgT], ResultT],
        arg: ArgT,
        *,
        timeout_seconds: float,
        summary: str,
    ) -> ResultT:
        """A heartbeating wait bounded by its stage's timeout; retried on another worker from
        its last heartbeat, never after it was cancelled."""
        timeout = timedelta(seconds=timeout_seconds)
        return await _plain_cancel(
            workflow.execute_activity_method(
                activity,
                arg,
                start_to_close_timeout=timeout,
                schedule_to_close_timeout=timeout,
                heartbeat_timeout=self._heartbeat_timeout,
                retry_policy=RetryPolicy(non_retryable_error_types=["CancelledError"]),
                summary=summary,
            )
        )

    def _watch(
        self, activity: Callable[[Any, ArgT], ResultT], arg: ArgT, *, summary: str
    ) -> asyncio.Task[ResultT]:
        """A watch that runs until it finds something or is cancelled; a cancel waits for the
        watch to stop, so none outlives its deployment."""
        return workflow.start_activity_method(
            activity,
            arg,
            start_to_close_timeout=timedelta(days=365),
            heartbeat_timeout=self._heartbeat_timeout,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )

    # --- The steps -------------------------------------------------------------------------

    async def start_checks(self) -> StartChecks:
        """The deployment's search attributes that the namespace lacks, and the worker's
        signing policy (not an ECS call, but as quick as one: a local activity)."""
        return await workflow.execute_local_activity(
            missing_search_attributes,
            [key.name for key in sa.ALL],
            start_to_close_timeout=_SEARCH_ATTRIBUTE_CHECK_TIMEOUT,
            summary="Check search attributes",
        )

    async def describe_services(
        self, services: list[str], stage: Stage, summary: str, scalable_target_of: str | None = None
    ) -> ServiceSnapshots:
        request = self._request
        return await self.call(
            EcsActivities.describe_services,
            DescribeServicesInput(
                region=request.region,
                cluster=request.cluster,
                services=services,
                stage=stage,
                scalable_target_of=scalable_target_of,
            ),
            summary=summary,
        )

    async def where_service_was_left(self, name: str) -> str:
        """Where a failed rollback left a service, in plain words (never raises: it only
        completes the failure's message)."""
        try:
            found = await self.describe_services(
                [name], Stage.ROLLBACK, f"Describe service {name} after the failed rollback"
            )
        except Exception as err:
            return f"its state is unknown ({failure_reason(err)[1]})"
        service = found.services[name]
        if service is None:
            return f"service {name} no longer exists"
        return (
            f"service {name} was left {service.status} on task definition "
            f"{service.task_definition} with {service.running_count}/{service.desired_count} "
            "tasks running"
        )

    async def register_task_definition(
        self, run_id: str, may_be_repeated: bool
    ) -> RegisteredTaskDefinition:
        request = self._request
        return await self.call(
            EcsActivities.register_task_definition,
            RegisterTaskDefinitionInput(
                region=request.region,
                cluster=request.cluster,
                service=request.canary_service_name,
                stage=Stage.CANARY_DEPLOY,
                task_definition=request.task_definition,
                run_id=run_id,
                may_be_repeated=may_be_repeated,
            ),
            summary=f"Register task definition {request.task_definition['family']}",
        )

    async def check_rollback_possible(self, previous: ServiceSnapshot) -> None:
        """ECS cannot point a service back at a deregistered task definition: a deployment
        that could not be rolled back stops before anyone verifies it. Made beside the
        canary's wait."""
        arn = previous.task_definition
        state = await self.call_beside_wait(
            EcsActivities.describe_task_definition,
            DescribeTaskDefinitionInput(region=self._request.region, arn=arn),
            summary=f"Check rollback target {short_arn(arn)}",
        )
        if state.status != "ACTIVE":
            raise StageFailure(
                Stage.CANARY_DEPLOY,
                f"the service's current task definition {arn} is {state.status or 'gone'}, "
                "so a failed rollout could not be rolled back; the main service was not touched",
                "PreviousTaskDefinitionInactive",
            )

    async def create_service(
        self,
        service: str,
        stage: Stage,
        arn: str,
        desired: int,
        tags: dict[str, str],
        load_balancers: list[dict[str, Any]] | None = None,
    ) -> ServiceChange:
        request = self._request
        return await self.call(
            EcsActivities.create_service,
            CreateServiceInput(
                region=request.region,
                cluster=request.cluster,
                service=service,
                stage=stage,
                task_definition_arn=arn,
                service_definition=request.service_definition,
                desired_count=desired,
                tags=tags,
                load_balancers=load_balancers,
            ),
            summary=f"Create service {service} (desired {desired})",
        )

    async def update_service(
        self,
        stage: Stage,
        arn: str,
        desired: int,
        deployment_configuration: dict[str, Any] | None,
    ) -> ServiceChange:
        request = self._request
        return await self.call(
            EcsActivities.update_service,
            UpdateServiceInput(
                region=request.region,
                cluster=request.cluster,
                service=request.service_name,
                stage=stage,
                task_definition_arn=arn,
                desired_count=desired,
                deployment_configuration=deployment_configuration,
            ),
            summary=f"Update service {request.service_name} to {short_arn(arn)} "
            f"(desired {desired})",
        )

    async def wait_for_steady_state(
        self,
        service: str,
        stage: Stage,
        change: ServiceChange,
        arn: str,
        timeout: float,
        *,
        alarms: list[str],
        done_message: str | None = None,
    ) -> SteadyState:
        request = self._request
        return await self._wait(
            EcsActivities.wait_for_steady_state,
            WaitSteadyInput(
                region=request.region,
                cluster=request.cluster,
                service=service,
                stage=stage,
                poll_interval_seconds=request.poll_interval_seconds,
                timeout_seconds=timeout,
                events_since=change.deployment_created_at or workflow.now(),
                done_message=done_message,
                task_definition_arn=arn,
                max_failed_tasks=request.max_failed_tasks,
                alarms=alarms,
                service_deployment_arn=change.service_deployment_arn,
            ),
            timeout_seconds=timeout,
            summary=f"Wait for {service} to reach steady state",
        )

    async def remove_service(
        self, service: str, stage: Stage, done_message: str | None = None
    ) -> None:
        """Delete a service and wait until ECS has it INACTIVE."""
        request = self._request
        since = workflow.now()
        await self.call(
            EcsActivities.delete_service,
            DeleteServiceInput(
                region=request.region, cluster=request.cluster, service=service, stage=stage
            ),
            summary=f"Delete service {service}",
        )
        timeout = request.stage_timeouts.canary_delete
        await self._wait(
            EcsActivities.wait_for_inactive,
            WaitInactiveInput(
                region=request.region,
                cluster=request.cluster,
                service=service,
                stage=stage,
                poll_interval_seconds=request.poll_interval_seconds,
                timeout_seconds=timeout,
                events_since=since,
                done_message=done_message,
            ),
            timeout_seconds=timeout,
            summary=f"Wait for {service} to be INACTIVE",
        )

    def watch_alarms(self) -> asyncio.Task[AlarmFiring]:
        """Watch the verification alarms until one fires or the watch is cancelled."""
        request = self._request
        alarms = request.verification.alarms
        return self._watch(
            AlarmActivities.watch_alarms,
            WatchAlarmsInput(
                region=request.region,
                alarms=alarms,
                poll_interval_seconds=request.poll_interval_seconds,
            ),
            summary=f"Watch alarms {', '.join(alarms)}",
        )


async def _plain_cancel(activity: Awaitable[ResultT]) -> ResultT:
    """A cancelled activity task means this run (or this wait) was cancelled: say it with
    asyncio's own CancelledError, as every other await in the workflow does."""
    try:
        return await activity
    except ActivityError as err:
        if was_cancelled(err):
            raise asyncio.CancelledError() from err
        raise
