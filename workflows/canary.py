"""EcsCanaryDeployment: Harness's ECS canary sequence as one durable workflow.

Canary Deploy -> Verification gate -> Canary Delete -> Rolling Deploy (rollback on failure).
The workflow only decides; every ECS and CloudWatch call is an activity. Whatever ends a run,
the canary service is deleted before the run closes.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.alarms import AlarmActivities
    from activities.ecs import EcsActivities
    from activities.search_attributes import missing_search_attributes
    from ecs_canary import search_attributes as sa
    from ecs_canary.gate import Gate
    from ecs_canary.models import (
        AlarmFiring,
        CreateServiceInput,
        Decision,
        DecisionAction,
        DecisionInput,
        DecisionSource,
        DeleteServiceInput,
        DeploymentRequest,
        DeploymentResult,
        DeploymentStatus,
        DescribeServicesInput,
        DescribeTaskDefinitionInput,
        Outcome,
        RegisterTaskDefinitionInput,
        ServiceChange,
        ServiceSnapshot,
        ServiceSnapshots,
        Stage,
        StageTiming,
        UpdateServiceInput,
        WaitInactiveInput,
        WaitSteadyInput,
        WatchAlarmsInput,
    )
    from ecs_canary.names import RUN_ID_TAG, WORKFLOW_ID_TAG, WORKFLOW_TYPE
    from ecs_canary.text import duration_text

# Calls that do one ECS request: botocore already retried transient errors inside.
_CALL_TIMEOUT = timedelta(seconds=60)
# A wait heartbeats every poll and the worker sends the latest heartbeat every couple of
# seconds; a busy worker (a hundred deployments on two cores) can be a few seconds late, and a
# wait timed out for that polls twice from then on. A dead worker's wait moves on after this.
_MIN_HEARTBEAT_TIMEOUT = 10.0
_HEARTBEATS_PER_TIMEOUT = 3
_PATCH_SEARCH_ATTRIBUTE_CHECK = "check-search-attributes"
# Fewer events and round trips: the first describe runs as a local activity beside the
# search-attribute check, the search attributes set at the start and at the end go in one upsert
# each, and the rollback target is checked while the canary starts instead of before the rolling
# deploy.
_PATCH_LEAN_HISTORY = "lean-history"
# Every single ECS call (register, create, update, delete, describe) runs as a local activity in
# the workflow task that asks for it: no activity task goes through the server, so a stage's
# calls cost one workflow task instead of one round trip each. The waits, which poll for minutes
# and heartbeat, stay activity tasks, and so does a call that runs beside one.
_PATCH_LOCAL_ECS_CALLS = "local-ecs-calls"
# A run's history holds these events when its first workflow task begins (started, task
# scheduled, task started); more mean an earlier attempt of that task may have begun its calls.
_FIRST_TASK_HISTORY_LENGTH = 3


class _Rejected(Exception):
    """The gate was decided against the canary before or during verification."""


class StageFailure(Exception):
    """A stage failed; carries the stage and the reason in ECS's words."""

    def __init__(self, stage: Stage, reason: str, failure_type: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.failure_type = failure_type


async def _settle(task: asyncio.Future[Any]) -> None:
    """Let a side task finish after the step it ran beside has ended; its outcome no longer
    matters."""
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


def _failure_reason(err: BaseException) -> tuple[str, str]:
    """(type, message) of what really went wrong, unwrapped from Temporal's activity error."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", cause.message
    if isinstance(cause, TimeoutError):
        return "Timeout", f"timed out ({cause.type.name if cause.type else 'timeout'})"
    return type(cause).__name__, str(cause)


@workflow.defn(name=WORKFLOW_TYPE)
class EcsCanaryDeployment:
    def __init__(self) -> None:
        self._request: DeploymentRequest | None = None
        self._stage = Stage.CANARY_DEPLOY
        self._stages: list[StageTiming] = []
        self._gate = Gate()
        self._task_definition_arn: str | None = None
        self._previous: ServiceSnapshot | None = None
        self._canary_may_exist = False
        self._canary_deleted = False
        self._running: int | None = None
        self._desired: int | None = None
        self._recent_events: list[str] = []
        self._outcome: Outcome | None = None
        self._search_attributes_registered = True
        self._cancel_handled = False
        self._lean = False
        self._local_calls = False
        self._calls_may_repeat = False
        self._first_look: asyncio.Future[ServiceSnapshots] | None = None

    # --- Messages ---------------------------------------------------------------------------

    @workflow.query
    def status(self) -> DeploymentStatus:
        request = self._request
        return DeploymentStatus(
            stage=self._stage,
            gate_open=self._gate.is_open,
            cluster=request.cluster if request else "",
            main_service=request.service_name if request else "",
            canary_service=request.canary_service_name if request else "",
            task_definition_arn=self._task_definition_arn,
            running_count=self._running,
            desired_count=self._desired,
            recent_events=self._recent_events,
            decision=self._gate.decision,
            approvals=self._gate.approvals,
            attempts=self._gate.attempts,
            gate_seconds_left=self._gate.seconds_left(workflow.now()),
            bake_seconds_left=self._gate.bake_seconds_left(workflow.now()),
            stages=self._stages,
            outcome=self._outcome,
        )

    @workflow.signal(name="approve")
    def approve_signal(self, decision: DecisionInput | None = None) -> None:
        self._offer("approve", decision, "signal")

    @workflow.signal(name="reject")
    def reject_signal(self, decision: DecisionInput | None = None) -> None:
        self._offer("reject", decision, "signal")

    @workflow.update(name="approve")
    def approve_update(self, decision: DecisionInput | None = None) -> DeploymentStatus:
        self._offer("approve", decision, "update")
        return self.status()

    @approve_update.validator
    def _validate_approve(self, decision: DecisionInput | None = None) -> None:
        self._gate.check("approve", decision or DecisionInput())

    @workflow.update(name="reject")
    def reject_update(self, decision: DecisionInput | None = None) -> DeploymentStatus:
        self._offer("reject", decision, "update")
        return self.status()

    @reject_update.validator
    def _validate_reject(self, decision: DecisionInput | None = None) -> None:
        self._gate.check("reject", decision or DecisionInput())

    def _offer(
        self, action: DecisionAction, decision: DecisionInput | None, via: DecisionSource
    ) -> None:
        self._gate.offer(action, decision or DecisionInput(), via, workflow.now())
        if self._request is not None:
            self._set_details()

    # --- The run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: Any) -> DeploymentResult:
        # A run rebuilt from its history (another worker took it over, or this one evicted it)
        # or one whose first task was begun before may repeat a local activity that already
        # made its change: a local activity's attempts start over on the worker that takes over.
        self._calls_may_repeat = (
            workflow.unsafe.is_replaying()
            or workflow.info().get_current_history_length() > _FIRST_TASK_HISTORY_LENGTH
        )
        # Typed Any so that any JSON decodes: a bad request fails the run with the validation
        # error instead of leaving its first workflow task retrying forever.
        try:
            self._request = DeploymentRequest.model_validate(request)
        except ValidationError as err:
            raise ApplicationError(
                f"Invalid deployment request: {err}", type="InvalidRequest", non_retryable=True
            ) from None
        request = self._request
        self._gate.configure(request.verification)
        # A run with the newest patch has every earlier one: only runs recorded before it ask
        # for those (each patch asked for is one more marker and search attribute update).
        self._local_calls = workflow.patched(_PATCH_LOCAL_ECS_CALLS)
        self._lean = self._local_calls or workflow.patched(_PATCH_LEAN_HISTORY)
        if self._lean:  # the first look at the services needs nothing from the check below
            self._first_look = asyncio.ensure_future(self._look_at_services())
        await self._check_search_attributes()
        where = (
            sa.ECS_CLUSTER.value_set(request.cluster),
            sa.ECS_SERVICE.value_set(request.service_name),
        )
        if self._lean:
            self._enter(Stage.CANARY_DEPLOY, *where)
        else:
            self._upsert(*where)
            self._enter(Stage.CANARY_DEPLOY)
        try:
            if await self._deploy():
                workflow.logger.info("Deployment Successful.", extra=self._log_context())
                return await self._finish(Outcome.SUCCEEDED, None)
            return await self._finish(Outcome.REJECTED, self._decision_reason())
        except (asyncio.CancelledError, CancelledError):
            self._cancel_handled = True
            await self._clean_up_canary()
            result = await self._finish(Outcome.CANCELLED, "the workflow was cancelled")
            raise CancelledError("Deployment cancelled", result.model_dump(mode="json")) from None
        except StageFailure as failure:
            await self._clean_up_canary()
            outcome = (
                Outcome.ROLLED_BACK if failure.failure_type == "RolledBack" else Outcome.FAILED
            )
            result = await self._finish(outcome, failure.reason)
            raise ApplicationError(
                f"{failure.stage.value} failed: {failure.reason}",
                result.model_dump(mode="json"),
                type=failure.failure_type,
                non_retryable=True,
            ) from None

    # --- Stages -----------------------------------------------------------------------------

    async def _deploy(self) -> bool:
        """The four stages; False when the canary was rejected (and deleted)."""
        try:
            await self._deploy_canary()
            await self._verify()
        except _Rejected:
            await self._delete_canary()
            return False
        await self._delete_canary()
        if self._gate.decision is None or self._gate.decision.action == "reject":
            return False
        await self._rolling_deploy()
        return True

    async def _deploy_canary(self) -> None:
        request = self._require_request()
        try:
            found = await (self._first_look or self._look_at_services())
            self._previous = found.services[request.service_name]
            if found.services[request.canary_service_name] is not None:
                self._canary_may_exist = True
                await self._remove_service(request.canary_service_name, Stage.CANARY_DEPLOY)
                self._canary_may_exist = False
            self._check_not_rejected()
            registered = await self._activity(
                EcsActivities.register_task_definition,
                RegisterTaskDefinitionInput(
                    region=request.region,
                    cluster=request.cluster,
                    service=request.canary_service_name,
                    stage=Stage.CANARY_DEPLOY,
                    task_definition=request.task_definition,
                    run_id=workflow.info().run_id,
                    may_be_repeated=self._local_calls and self._calls_may_repeat,
                ),
                summary=f"Register task definition {request.task_definition['family']}",
            )
            self._task_definition_arn = registered.arn
            self._check_not_rejected()
            self._canary_may_exist = True
            created = await self._activity(
                EcsActivities.create_service,
                CreateServiceInput(
                    region=request.region,
                    cluster=request.cluster,
                    service=request.canary_service_name,
                    stage=Stage.CANARY_DEPLOY,
                    task_definition_arn=registered.arn,
                    service_definition=request.service_definition,
                    desired_count=request.canary.desired_count,
                    tags={
                        WORKFLOW_ID_TAG: workflow.info().workflow_id,
                        RUN_ID_TAG: workflow.info().run_id,
                    },
                ),
                summary=f"Create service {request.canary_service_name} "
                f"(desired {request.canary.desired_count})",
            )
            # The rollback target is read while the canary starts: off the critical path, and
            # a deployment that could not be rolled back stops before anyone verifies it.
            rollback_check = (
                asyncio.ensure_future(
                    self._check_rollback_possible(self._previous, Stage.CANARY_DEPLOY)
                )
                if self._lean and self._previous is not None
                else None
            )
            try:
                await self._until_rejected(
                    self._wait_steady(
                        request.canary_service_name,
                        Stage.CANARY_DEPLOY,
                        created,
                        registered.arn,
                        request.stage_timeouts.canary_deploy,
                        done_message=f"Created Service {request.canary_service_name} "
                        "with Arn {arn}",
                    )
                )
            except BaseException:
                if rollback_check is not None:
                    await _settle(rollback_check)
                raise
            if rollback_check is not None:
                await rollback_check
        except (_Rejected, asyncio.CancelledError, CancelledError):
            raise
        except Exception as err:
            raise self._stage_failure(Stage.CANARY_DEPLOY, err) from err

    async def _verify(self) -> None:
        request = self._require_request()
        verification = request.verification
        self._enter(Stage.VERIFICATION)
        alarm_watch = None
        if verification.alarms:
            alarm_watch = workflow.start_activity_method(
                AlarmActivities.watch_alarms,
                WatchAlarmsInput(
                    region=request.region,
                    alarms=verification.alarms,
                    poll_interval_seconds=request.poll_interval_seconds,
                ),
                start_to_close_timeout=timedelta(days=365),
                heartbeat_timeout=self._heartbeat_timeout(),
                # The gate waits for the watch to stop, so none outlives its deployment.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"Watch alarms {', '.join(verification.alarms)}",
            )
        try:
            if verification.bake_seconds:
                self._gate.start_bake(workflow.now())
                self._set_details()
                await self._wait_for_gate(
                    verification.bake_seconds,
                    alarm_watch,
                    f"Bake {duration_text(verification.bake_seconds)}",
                )
                if self._gate.decision is not None:
                    return
            if not verification.require_approval:
                self._gate.decide_automatically(
                    "approve", "bake", "the bake time passed with no alarm", workflow.now()
                )
                return
            self._gate.open(workflow.now())
            self._set_details()
            timed_out = await self._wait_for_gate(
                verification.timeout_seconds,
                alarm_watch,
                f"Gate: wait for approval ({duration_text(verification.timeout_seconds)})",
            )
            if timed_out:
                self._gate.decide_automatically(
                    verification.on_timeout,
                    "timeout",
                    f"no decision within {duration_text(verification.timeout_seconds)}",
                    workflow.now(),
                )
        finally:
            self._gate.close()
            if alarm_watch is not None and not alarm_watch.done():
                alarm_watch.cancel()
                with contextlib.suppress(asyncio.CancelledError, ActivityError):
                    await alarm_watch

    async def _wait_for_gate(
        self, seconds: float, alarm_watch: asyncio.Task[AlarmFiring] | None, summary: str
    ) -> bool:
        """Wait for a decision, an alarm or the timer; True when the timer decided."""
        try:
            await workflow.wait_condition(
                lambda: (
                    self._gate.decision is not None
                    or (alarm_watch is not None and alarm_watch.done())
                ),
                timeout=seconds,
                timeout_summary=summary,
            )
        except builtins.TimeoutError:
            return True
        if self._gate.decision is None and alarm_watch is not None:
            try:
                firing = alarm_watch.result()
            except ActivityError as err:
                raise self._stage_failure(Stage.VERIFICATION, err) from err
            self._gate.decide_automatically(
                "reject",
                "alarm",
                f"alarm {firing.name}: {firing.reason}",
                workflow.now(),
                by=f"alarm:{firing.name}",
            )
        return False

    async def _delete_canary(self) -> None:
        request = self._require_request()
        self._enter(Stage.CANARY_DELETE)
        try:
            await self._remove_service(
                request.canary_service_name,
                Stage.CANARY_DELETE,
                done_message=f"Canary service {request.canary_service_name} deleted",
            )
        except (asyncio.CancelledError, CancelledError):
            raise
        except Exception as err:
            raise self._stage_failure(Stage.CANARY_DELETE, err) from err

    async def _remove_service(
        self, service: str, stage: Stage, done_message: str | None = None
    ) -> None:
        request = self._require_request()
        since = workflow.now()
        await self._activity(
            EcsActivities.delete_service,
            DeleteServiceInput(
                region=request.region, cluster=request.cluster, service=service, stage=stage
            ),
            summary=f"Delete service {service}",
        )
        timeout = request.stage_timeouts.canary_delete
        await self._activity(
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
            summary=f"Wait for {service} to be INACTIVE",
            wait_seconds=timeout,
        )
        if service == request.canary_service_name:
            self._canary_may_exist = False
            self._canary_deleted = True

    async def _clean_up_canary(self) -> None:
        """Delete the canary whatever ended the run; shielded from the run's cancellation."""
        if not self._canary_may_exist:
            return
        request = self._require_request()
        workflow.logger.info(
            f"Cleaning up canary service {request.canary_service_name}", extra=self._log_context()
        )
        try:
            await asyncio.shield(
                asyncio.ensure_future(
                    self._remove_service(request.canary_service_name, self._stage)
                )
            )
        except Exception as err:
            kind, reason = _failure_reason(err)
            workflow.logger.error(
                f"Could not delete canary service {request.canary_service_name}: {reason}",
                extra=self._log_context(),
            )

    async def _rolling_deploy(self) -> None:
        request = self._require_request()
        arn = self._require_arn()
        self._enter(Stage.ROLLING_DEPLOY)
        previous = self._previous
        try:
            if previous is not None:
                if not self._lean:
                    await self._check_rollback_possible(previous, Stage.ROLLING_DEPLOY)
                desired = (
                    previous.desired_count
                    if request.rolling.same_as_running_instances
                    else request.desired_count
                )
                change = await self._update(
                    arn, desired, request.service_definition.get("deploymentConfiguration")
                )
            else:
                desired = request.desired_count
                change = await self._activity(
                    EcsActivities.create_service,
                    CreateServiceInput(
                        region=request.region,
                        cluster=request.cluster,
                        service=request.service_name,
                        stage=Stage.ROLLING_DEPLOY,
                        task_definition_arn=arn,
                        service_definition=request.service_definition,
                        desired_count=desired,
                        tags={WORKFLOW_ID_TAG: workflow.info().workflow_id},
                    ),
                    summary=f"Create service {request.service_name} (desired {desired})",
                )
            await self._wait_steady(
                request.service_name,
                Stage.ROLLING_DEPLOY,
                change,
                arn,
                request.stage_timeouts.rolling_deploy,
                alarms=request.verification.alarms,
            )
        except (asyncio.CancelledError, CancelledError):
            self._cancel_handled = True
            await self._roll_back("the workflow was cancelled during the rolling deploy")
            raise
        except Exception as err:
            failure = self._stage_failure(Stage.ROLLING_DEPLOY, err)
            if failure.failure_type == "PreviousTaskDefinitionInactive":
                raise failure from err
            await self._roll_back(failure.reason)
            raise StageFailure(
                Stage.ROLLING_DEPLOY,
                failure.reason,
                "RolledBack" if previous is not None else failure.failure_type,
            ) from err

    async def _check_rollback_possible(self, previous: ServiceSnapshot, stage: Stage) -> None:
        request = self._require_request()
        state = await self._activity(
            EcsActivities.describe_task_definition,
            DescribeTaskDefinitionInput(region=request.region, arn=previous.task_definition),
            summary=f"Check rollback target {previous.task_definition.rsplit('/', 1)[-1]}",
            # It runs beside the canary's wait: as a local activity it would hold the workflow
            # task, and with it the start of the wait, until its answer came.
            local=False,
        )
        if state.status != "ACTIVE":
            raise StageFailure(
                stage,
                f"the service's current task definition {previous.task_definition} is "
                f"{state.status or 'gone'}, so a failed rollout could not be rolled back; "
                "the main service was not touched",
                "PreviousTaskDefinitionInactive",
            )

    async def _update(
        self, arn: str, desired: int, deployment_configuration: dict[str, Any] | None
    ) -> ServiceChange:
        request = self._require_request()
        return await self._activity(
            EcsActivities.update_service,
            UpdateServiceInput(
                region=request.region,
                cluster=request.cluster,
                service=request.service_name,
                stage=self._stage,
                task_definition_arn=arn,
                desired_count=desired,
                deployment_configuration=deployment_configuration,
            ),
            summary=f"Update service {request.service_name} to "
            f"{arn.rsplit('/', 1)[-1]} (desired {desired})",
        )

    async def _roll_back(self, reason: str) -> None:
        """Restore the previous task definition, count and configuration (Harness's ECS Rolling
        Rollback); on a first deployment remove the service that never became healthy."""
        request = self._require_request()
        previous = self._previous
        self._enter(Stage.ROLLBACK)
        workflow.logger.warning(
            f"Rolling back service {request.service_name}: {reason}", extra=self._log_context()
        )
        try:
            if previous is None:
                await self._remove_service(request.service_name, Stage.ROLLBACK)
                return
            change = await self._update(
                previous.task_definition,
                previous.desired_count,
                previous.deployment_configuration,
            )
            await self._wait_steady(
                request.service_name,
                Stage.ROLLBACK,
                change,
                previous.task_definition,
                request.stage_timeouts.rollback,
            )
        except Exception as err:
            _, rollback_reason = _failure_reason(err)
            raise StageFailure(
                Stage.ROLLBACK,
                f"rollback of service {request.service_name} failed: {rollback_reason}; "
                f"{await self._main_service_state()}. "
                f"The rolling deploy had failed because: {reason}",
                "RollbackFailed",
            ) from err

    async def _main_service_state(self) -> str:
        """Where a failed rollback left the main service, in plain words."""
        request = self._require_request()
        try:
            found = await self._describe_services(
                [request.service_name],
                Stage.ROLLBACK,
                summary=f"Describe service {request.service_name} after the failed rollback",
            )
        except ActivityError as err:
            return f"its state is unknown ({_failure_reason(err)[1]})"
        service = found.services[request.service_name]
        if service is None:
            return f"service {request.service_name} no longer exists"
        return (
            f"service {request.service_name} was left {service.status} on task definition "
            f"{service.task_definition} with {service.running_count}/{service.desired_count} "
            "tasks running"
        )

    async def _look_at_services(self) -> ServiceSnapshots:
        """The main and canary services as they are before this deployment changes anything."""
        request = self._require_request()
        return await self._describe_services(
            [request.service_name, request.canary_service_name],
            Stage.CANARY_DEPLOY,
            summary=f"Describe services {request.service_name}, {request.canary_service_name}",
            local=True if self._lean else None,
        )

    async def _describe_services(
        self, services: list[str], stage: Stage, *, summary: str, local: bool | None = None
    ) -> ServiceSnapshots:
        request = self._require_request()
        return await self._activity(
            EcsActivities.describe_services,
            DescribeServicesInput(
                region=request.region, cluster=request.cluster, services=services, stage=stage
            ),
            summary=summary,
            local=local,
        )

    async def _wait_steady(
        self,
        service: str,
        stage: Stage,
        change: ServiceChange,
        arn: str,
        timeout: float,
        *,
        alarms: list[str] | None = None,
        done_message: str | None = None,
    ) -> None:
        request = self._require_request()
        steady = await self._activity(
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
                alarms=alarms or [],
            ),
            summary=f"Wait for {service} to reach steady state",
            wait_seconds=timeout,
        )
        self._running, self._desired = steady.running_count, steady.desired_count
        self._recent_events = steady.recent_events
        self._set_details()

    # --- Plumbing ---------------------------------------------------------------------------

    async def _activity(
        self,
        method: Any,
        arg: Any,
        *,
        summary: str,
        wait_seconds: float | None = None,
        local: bool | None = None,
    ) -> Any:
        """Run one activity. Calls that change ECS are never abandoned mid-flight (a cancelled
        run waits for them), so cleanup never races a create; waits heartbeat and are bounded
        by the stage timeout. `local` None: a local activity where the run has that patch."""
        try:
            result = await self._execute(method, arg, summary, wait_seconds, local)
        except ActivityError as err:
            # A cancelled activity means this run (or this wait) was cancelled: say so plainly.
            if isinstance(err.cause, CancelledError):
                raise asyncio.CancelledError() from err
            raise
        # A cancel that arrived while an ECS change finished (it is never abandoned midway)
        # must still stop the run, unless this call is part of handling that cancel.
        if workflow.cancellation_reason() is not None and not self._cancel_handled:
            raise asyncio.CancelledError()
        return result

    async def _execute(
        self,
        method: Any,
        arg: Any,
        summary: str,
        wait_seconds: float | None,
        local: bool | None,
    ) -> Any:
        request = self._require_request()
        if wait_seconds is not None:
            return await workflow.execute_activity_method(
                method,
                arg,
                start_to_close_timeout=timedelta(seconds=wait_seconds),
                schedule_to_close_timeout=timedelta(seconds=wait_seconds),
                heartbeat_timeout=self._heartbeat_timeout(),
                retry_policy=RetryPolicy(non_retryable_error_types=["CancelledError"]),
                summary=summary,
            )
        # One ECS call: retried within the rollback stage's time, whichever way it runs.
        retried_for = timedelta(seconds=request.stage_timeouts.rollback)
        if local or (local is None and self._local_calls):
            return await self._local_call(method, arg, summary, retried_for)
        return await workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=_CALL_TIMEOUT,
            schedule_to_close_timeout=retried_for,
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )

    async def _local_call(self, method: Any, arg: Any, summary: str, retried_for: timedelta) -> Any:
        """One ECS call inside this workflow task. Shielded: a cancelled run still waits for
        the call's answer, so no change to ECS is abandoned midway and no cleanup races it."""
        call = asyncio.ensure_future(
            workflow.execute_local_activity_method(
                method,
                arg,
                start_to_close_timeout=_CALL_TIMEOUT,
                schedule_to_close_timeout=retried_for,
                summary=summary,
            )
        )
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            await _settle(call)
            raise

    def _heartbeat_timeout(self) -> timedelta:
        poll = self._require_request().poll_interval_seconds
        return timedelta(seconds=max(_MIN_HEARTBEAT_TIMEOUT, _HEARTBEATS_PER_TIMEOUT * poll))

    async def _until_rejected(self, step: Any) -> None:
        """Run a wait, abandoning it as soon as someone rejects the canary."""
        task = asyncio.ensure_future(step)
        await workflow.wait_condition(lambda: task.done() or self._gate.rejected)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, CancelledError, ActivityError):
                await task
            raise _Rejected()
        task.result()

    def _check_not_rejected(self) -> None:
        if self._gate.rejected:
            raise _Rejected()

    def _stage_failure(self, stage: Stage, err: BaseException) -> StageFailure:
        if isinstance(err, StageFailure):
            return err
        kind, reason = _failure_reason(err)
        return StageFailure(stage, reason, kind)

    def _enter(self, stage: Stage, *also: Any) -> None:
        now = workflow.now()
        if self._stages and self._stages[-1].ended_at is None:
            self._stages[-1].ended_at = now
        self._stage = stage
        if stage != Stage.FINISHED:
            self._stages.append(StageTiming(stage=stage, started_at=now))
        self._upsert(*also, sa.DEPLOYMENT_STAGE.value_set(stage.value))
        workflow.logger.info(f"Stage {stage.value}", extra=self._log_context())
        self._set_details()

    async def _check_search_attributes(self) -> None:
        # Runs recorded before this check existed upserted unconditionally: replay them so.
        if not (self._local_calls or workflow.patched(_PATCH_SEARCH_ATTRIBUTE_CHECK)):
            return
        missing = await workflow.execute_local_activity(
            missing_search_attributes,
            [key.name for key in sa.ALL],
            start_to_close_timeout=timedelta(seconds=30),
        )
        if missing:
            self._search_attributes_registered = False
            workflow.logger.warning(
                f"Search attributes {', '.join(missing)} are not registered in this namespace, "
                "so this deployment will not show up in list queries; register them with "
                "`temporal operator search-attribute create --name <name> --type Keyword`",
                extra=self._log_context(),
            )

    def _upsert(self, *updates: Any) -> None:
        if self._search_attributes_registered:
            workflow.upsert_search_attributes(list(updates))

    async def _finish(self, outcome: Outcome, reason: str | None) -> DeploymentResult:
        request = self._require_request()
        # Safe message handlers: none may still be running when the run closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._outcome = outcome
        result = sa.DEPLOYMENT_OUTCOME.value_set(outcome.value)
        if self._lean:
            self._enter(Stage.FINISHED, result)
        else:
            self._enter(Stage.FINISHED)
            self._upsert(result)
        return DeploymentResult(
            outcome=outcome,
            reason=reason,
            cluster=request.cluster,
            main_service=request.service_name,
            canary_service=request.canary_service_name,
            task_definition_arn=self._task_definition_arn,
            previous_task_definition_arn=self._previous.task_definition if self._previous else None,
            canary_deleted=self._canary_deleted or not self._canary_may_exist,
            decision=self._gate.decision,
            attempts=self._gate.attempts,
            stages=self._stages,
        )

    def _decision_reason(self) -> str | None:
        decision: Decision | None = self._gate.decision
        if decision is None:
            return None
        who = f" by {decision.by}" if decision.by else ""
        why = f": {decision.reason}" if decision.reason else ""
        return f"{decision.action} ({decision.via}){who}{why}"

    def _set_details(self) -> None:
        request = self._require_request()
        lines = [f"**Stage:** {self._stage.value}"]
        if self._running is not None:
            lines.append(f"**Running:** {self._running}/{self._desired}")
        if self._recent_events:
            lines.append(f"**Last ECS event:** {self._recent_events[-1]}")
        if self._gate.is_open:
            workflow_id = workflow.info().workflow_id
            lines.append(
                "**Gate open:** approve with `temporal workflow update execute --workflow-id "
                f'{workflow_id} --name approve --input \'{{"by":"you"}}\'`'
            )
        if self._gate.decision is not None:
            lines.append(f"**Decision:** {self._decision_reason()}")
        lines.append(f"**Service:** {request.service_name} on {request.cluster}")
        workflow.set_current_details("\n\n".join(lines))

    def _log_context(self) -> dict[str, Any]:
        request = self._require_request()
        return {
            "cluster": request.cluster,
            "service": request.service_name,
            "stage": self._stage.value,
            "workflow_id": workflow.info().workflow_id,
        }

    def _require_request(self) -> DeploymentRequest:
        assert self._request is not None, "the request is validated first thing in run()"
        return self._request

    def _require_arn(self) -> str:
        assert self._task_definition_arn is not None, "registered during the canary deploy"
        return self._task_definition_arn
