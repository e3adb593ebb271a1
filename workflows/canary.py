"""EcsCanaryDeployment: Harness's ECS canary sequence as one durable workflow.

Canary Deploy -> Verification -> Canary Delete -> Rolling Deploy. The workflow only decides;
every ECS and CloudWatch call is an activity (see `workflows.calls` for how each runs).
Whatever ends a run early goes through one cleanup path (`_end_early`, with
`workflows.cleanup`): the canary service (and canary analysis's baseline beside it) is
deleted before the run closes, and a main service the rolling deploy touched is rolled back.

A bug in the workflow code is not a failed deployment, and does not end the run. An exception
that is neither one of Temporal's failures nor a stage's verdict (`ENDS_A_DEPLOYMENT`), a
`TypeError` or an `AttributeError`, is not caught: it fails the workflow task, as the SDK does
by default, and Temporal retries the task until a worker with the fix replays the run's
history and carries on where the bug stopped it. Nothing is lost, and the deployment ends as it
would have. Cleaning up at once would report the bug as the service's failure, throw away a
run that a fix could finish, and invite a new deployment that meets the same bug; the operator
decides instead, with a cancel the one way to clean up. Meanwhile the
run stays Running, frozen at the bug: the canary keeps serving as it does while verification
waits for a decision, the main service stays as the last finished step left it, and the Web UI
(and `temporal workflow describe`) shows the failed workflow task with the error and its stack
trace, as the worker logs it at every attempt. An operator who will not wait for the fix
cancels the run: the cancel reaches it where it waits, before the code with the bug runs
again, and the cleanup path deletes the canary as for any cancel (README, "When things go
wrong"; a bug on the cleanup path itself leaves terminating the run and deleting the canary by
hand).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from ecs_canary import search_attributes as sa
    from ecs_canary.gate import Gate
    from ecs_canary.hold import TRAIN_HOLD_SIGNAL
    from ecs_canary.models import (
        DeploymentRequest,
        DeploymentResult,
        DeploymentStatus,
        Outcome,
        Stage,
        StartChecks,
    )
    from ecs_canary.names import RUN_ID_TAG, WORKFLOW_ID_TAG, WORKFLOW_TYPE
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.train import TRAIN_DECISION_SIGNAL
    from workflows.analysis import pending_analysis
    from workflows.baseline import BaselineService
    from workflows.calls import Calls, abandoned_when, calls_may_repeat, settle, together
    from workflows.cleanup import Cleanup
    from workflows.continue_at_gate import GateContinuation, continued
    from workflows.decision_messages import DecisionMessages
    from workflows.decisions import DecisionDesk
    from workflows.ecs_calls import EcsSteps
    from workflows.failures import StageFailure
    from workflows.hold import serve_hold_messages
    from workflows.notifications import Notifier
    from workflows.payloads import NO_ARGUMENT, read_argument
    from workflows.preflight import (
        REFUSED,
        baseline_load_balancers,
        canary_load_balancers,
        first_look,
        refusal,
    )
    from workflows.presentation import decision_text, invalid_request_text, unlisted_warning
    from workflows.run_part import RunContext
    from workflows.scaling import ScalingHold
    from workflows.state import DeploymentState
    from workflows.steps import pending_steps
    from workflows.traffic import TrafficShift
    from workflows.train_member import (
        follow_train_hold,
        keep_a_cancelled_result_for_the_train,
        take_train_decision,
        train_membership_refusal,
    )
    from workflows.verification import verify, verify_at_open_gate
    from workflows.warm_up import WarmUpMessage
    from workflows.watch import RolloutWatch


# What ends a deployment early, through the cleanup path: Temporal's failures (an ECS call's or a
# check's error, a timeout, a cancel delivered as a failure), a stage's own verdict and the
# cancellation of the run. Anything else is a bug in this code (see the module docstring).
ENDS_A_DEPLOYMENT = (FailureError, StageFailure, asyncio.CancelledError)


@workflow.defn(name=WORKFLOW_TYPE)
class EcsCanaryDeployment(DecisionMessages, WarmUpMessage):
    RUN_KIND = "deployment"

    @workflow.init
    def __init__(self, request: RawValue = NO_ARGUMENT) -> None:
        """Validate the request before any handler runs: a signal delivered with the start
        (signal-with-start) must meet the gate as the request configures it. No input can fail
        the first task: it is decoded here (workflows.payloads)."""
        self._state = DeploymentState()
        info = workflow.info()
        self._gate = Gate(info.workflow_id, info.run_id)
        serve_hold_messages(self._check, self._take, self.status)  # pause, resume, override_freeze
        self._train_holds = asyncio.Lock()  # the train's holds, one at a time, in order
        self._request: DeploymentRequest | None = None
        self._invalid: str | None = None
        payload = read_argument(request)
        # A run that continued as new at its open gate takes up where the earlier run was.
        self._continued = carried = continued(payload)
        if carried is not None:
            self._request, self._state = carried.request, carried.state
            self._gate.configure(self._request.verification)
            self._gate.reopen(carried.gate)
        else:
            try:
                self._request = DeploymentRequest.model_validate(payload)
            except ValidationError as err:
                # Raised by run(), so the run fails at once instead of its task retrying forever.
                self._invalid = invalid_request_text(err, payload)
                return
            if (not_of_train := train_membership_refusal(self._request.train)) is not None:
                self._invalid = not_of_train
                return
            self._gate.configure(self._request.verification)
            self._state.verification_steps = pending_steps(self._request)
            self._state.analysis = pending_analysis(self._request)
        self._run = run = RunContext(self._request, self._state, self._gate, Calls(self._request))
        self._desk = DecisionDesk(
            self._gate,
            self._state.hold,
            carried.earlier_run_ids if carried else None,
            carried.used_token_ids if carried else None,
        )
        self._ecs = EcsSteps(run)
        self._traffic = TrafficShift(run)
        self._scaling = ScalingHold(run)
        self._baseline = BaselineService(run)
        self._cleanup = Cleanup(run)
        self._notifier = Notifier(run)
        self._watch = RolloutWatch(run)
        self._continuation = GateContinuation(run, self._desk, self._notifier)

    # --- Messages ---------------------------------------------------------------------------

    def _signal_arrived(self) -> None:
        self._continuation.signal_arrived()

    @workflow.query(description="Where the deployment stands: stage, gate, tasks, decision.")
    def status(self) -> DeploymentStatus:
        return self._state.status(self._request, self._gate)

    @workflow.signal(
        name=TRAIN_DECISION_SIGNAL,
        description="The release train's decision for this deployment's wave (sent by the "
        "train this deployment belongs to, which it confirms; ignored from anyone else).",
    )
    async def train_decision_signal(self, decision: RawValue = NO_ARGUMENT) -> None:
        if self._invalid is None:
            self._signal_arrived()
            await take_train_decision(self._run, read_argument(decision))

    @workflow.signal(
        name=TRAIN_HOLD_SIGNAL,
        description="The release train's pause or resume, for its deployments in flight (sent "
        "by the train this deployment belongs to, which it confirms; ignored from anyone "
        "else).",
    )
    async def train_hold_signal(self, hold: RawValue = NO_ARGUMENT) -> None:
        if self._invalid is None:
            self._signal_arrived()
            async with self._train_holds:
                await follow_train_hold(self._run, read_argument(hold))

    @workflow.signal(
        dynamic=True,
        description="Any other signal: none a deployment takes, so it is dropped.",
    )
    async def other_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Without it the SDK would keep each such signal in memory for a handler that never
        comes, and a flood of them would not count as signals for the gate's quiet moment
        (workflows.continue_at_gate): the run would continue as new in the middle of it."""
        if self._invalid is None:
            self._signal_arrived()

    # --- The run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: RawValue = NO_ARGUMENT) -> DeploymentResult:
        """The four stages, top to bottom. A rejection skips to Canary Delete; a failure or a
        cancel (`ENDS_A_DEPLOYMENT`) goes through `_end_early`. A bug is not caught: it fails
        the workflow task until a fixed worker resumes the run (module docstring)."""
        if self._invalid is not None:  # `request` was validated by __init__
            raise ApplicationError(self._invalid, type="InvalidRequest", non_retryable=True)
        self._run.calls.may_repeat = calls_may_repeat()
        # Runs as long as the run does: the Web UI details follow every change of the state.
        self._details = asyncio.ensure_future(self._run.keep_details_current())
        hold = self._run.hold  # a paused run takes no next step (workflows.hold)
        try:
            if self._continued is None:
                await self._canary_deploy()
                await hold.before_next_step()
                await self._verification()
            else:  # continued as new at its open gate (workflows.continue_at_gate)
                await verify_at_open_gate(self._run, self._desk.refresh_policy, self._continuation)
            if self._gate.decision is not None:
                self._notifier.send("decided", self.status())
            if self._gate.approved:
                await self._wait_out_freeze()  # the canary keeps serving meanwhile
            await hold.before_next_step()
            await self._canary_delete()
            await hold.before_next_step()
            if self._gate.approved:
                await self._wait_out_freeze()  # one that opened during the canary's delete
                await self._rolling_deploy()
                await self._watch.run()
        except ENDS_A_DEPLOYMENT as err:
            raise await self._end_early(err) from None
        if not self._gate.approved:
            return await self._finish(Outcome.REJECTED, decision_text(self._gate.decision))
        workflow.logger.info("Deployment Successful.", extra=self._run.log_context())
        return await self._finish(Outcome.SUCCEEDED, None)

    async def _end_early(self, err: BaseException) -> BaseException:
        """The one cleanup path (the saga's compensation): roll the main service back if the
        rolling deploy touched it and put its auto scaling back, put the listener rule back
        and delete the canary (and the baseline) if it may exist, and close the run with the
        error that says what ended it. A rule that cannot be put back keeps the canary (and the
        baseline) serving its traffic."""
        cancelled = isinstance(err, asyncio.CancelledError | CancelledError)
        failure = None if cancelled else StageFailure.of(err, self._state.stage)
        if self._state.main_service_touched:
            during = (
                "the watch after the rollout"
                if self._state.stage == Stage.WATCH
                else "the rolling deploy"
            )
            why = failure.reason if failure else f"the workflow was cancelled during {during}"
            try:
                await self._cleanup.roll_back(why)
            except StageFailure as rollback_failed:
                failure = rollback_failed
            else:
                if failure is not None:
                    failure = failure.rolled_back(self._state.previous is not None)
        await self._scaling.restore()
        stuck = await self._traffic.restore_on_the_way_out()
        if stuck is None:
            await self._cleanup.remove_canary_and_baseline()
        elif failure is not None:
            failure = failure.noting(stuck)
        if failure is None:
            why = "; ".join(["the workflow was cancelled", *([stuck] if stuck else [])])
            result = await self._finish(Outcome.CANCELLED, why)
            return CancelledError("Deployment cancelled", result.model_dump(mode="json"))
        outcome = Outcome.ROLLED_BACK if failure.ends_rolled_back else Outcome.FAILED
        result = await self._finish(outcome, failure.reason)
        return ApplicationError(
            f"{failure.stage.value} failed: {failure.reason}",
            result.model_dump(mode="json"),
            type=failure.failure_type,
            non_retryable=True,
        )

    # --- Stage 1: Canary Deploy -------------------------------------------------------------

    async def _canary_deploy(self) -> None:
        """Register the task definition, create the canary service (and, for canary analysis,
        the baseline beside it) and wait for both to be steady; stops early, leaving them to
        Canary Delete, if someone rejects the canary."""
        request, state = self._require_request(), self._state
        canary = request.canary_service_name
        self._may_have_been_created_before()
        checks = await self._ecs.start_checks()
        await self._learn_from_worker(checks)
        self._run.enter(
            Stage.CANARY_DEPLOY,
            sa.ECS_CLUSTER.value_set(request.cluster),
            sa.ECS_SERVICE.value_set(request.service_name),
        )
        if checks.policy and (refused := checks.policy.request_refusal(request.verification)):
            raise self._refusal(refused)  # before any ECS call
        await self._wait_out_freeze()
        look = await first_look(request, self._ecs, self._traffic)
        state.previous = look.main
        self._scaling.record(look.scalable_target)
        self._traffic.record(look.rule)
        if refused := refusal(request, look.main, look.scalable_target, look.rule):
            raise self._refusal(refused)
        await self._watch.find_alarms()
        leftovers = []  # left ACTIVE by an earlier, crashed run
        if look.canary_left_over:
            state.canary_may_exist = True
            leftovers.append(self._ecs.remove_service(canary, Stage.CANARY_DEPLOY))
        if look.baseline_left_over:
            state.baseline_may_exist = True
            leftovers.append(self._baseline.remove(Stage.CANARY_DEPLOY))
        await together(*leftovers)
        self._baseline.record(look.main)
        await self._run.hold.before_next_step()
        if self._gate.rejected:
            return
        info = workflow.info()
        registered = await self._ecs.register_task_definition(info.run_id)
        state.task_definition_arn = arn = registered.arn
        await self._run.hold.before_next_step()
        if self._gate.rejected:
            return
        state.canary_may_exist = True
        tags = {WORKFLOW_ID_TAG: info.workflow_id, RUN_ID_TAG: info.run_id}
        baseline_creation = asyncio.ensure_future(
            self._baseline.create(tags, baseline_load_balancers(request, look.main, look.rule))
        )
        try:
            created = await self._ecs.create_service(
                canary,
                Stage.CANARY_DEPLOY,
                arn,
                request.canary.desired_count,
                tags,
                canary_load_balancers(request, look.main, look.rule),
            )
        finally:
            await settle(baseline_creation)
        baseline_created = baseline_creation.result()
        steps: list[Awaitable[Any]] = [
            self._ecs.wait_steady(
                canary,
                created,
                arn,
                request.stage_timeouts.canary_deploy,
                done_message=f"Created Service {canary} with Arn {{arn}}",
            ),
            self._baseline.wait_steady(baseline_created),
        ]
        if state.previous is not None:
            # The rollback target's check goes beside the waits, while the canary's tasks
            # start: after them, every deployment waited for it once its canary was steady,
            # for seconds under a busy ECS budget (which serves it after polls and changes).
            # A failed check ends the waits at once. It is a call inside the workflow task,
            # not an activity task: a worker that dies holding an activity task stalls the run
            # until that task's timeout (a minute), while the workflow task with this call
            # moves to the next worker within seconds.
            steps.append(self._ecs.check_rollback_possible(state.previous))
        await abandoned_when(lambda: self._gate.rejected, together(*steps))
        await self._run.hold.before_next_step()
        if not self._gate.rejected:  # healthy: their weight for the verification stage
            await self._traffic.shift()

    # --- Stage 2: Verification --------------------------------------------------------------

    async def _verification(self) -> None:
        """Bake, then the gate: a person, the gate's timer or an alarm decides."""
        if self._gate.rejected:
            return
        self._run.enter(Stage.VERIFICATION)
        await verify(
            self._run,
            lambda: self._notifier.send("gate_open", self.status()),
            self._desk.refresh_policy,
            self._continuation,
        )

    # --- Stage 3: Canary Delete -------------------------------------------------------------

    async def _canary_delete(self) -> None:
        canary = self._require_request().canary_service_name
        self._run.enter(Stage.CANARY_DELETE)
        await self._traffic.restore()
        await together(
            self._ecs.remove_service(
                canary, Stage.CANARY_DELETE, done_message=f"Canary service {canary} deleted"
            ),
            self._baseline.remove(Stage.CANARY_DELETE),
        )

    # --- Stage 4: Rolling Deploy ------------------------------------------------------------

    async def _rolling_deploy(self) -> None:
        request, state = self._require_request(), self._state
        arn = state.task_definition_arn
        assert arn is not None, "registered during the canary deploy"
        self._run.enter(Stage.ROLLING_DEPLOY)
        await self._scaling.suspend()
        state.main_service_touched = True
        if state.previous is not None:
            desired = await self._scaling.rolling_count()
            deployment_configuration = request.service_definition.get("deploymentConfiguration")
            change = await self._ecs.update_service(
                Stage.ROLLING_DEPLOY, arn, desired, deployment_configuration
            )
        else:
            change = await self._ecs.create_service(
                request.service_name,
                Stage.ROLLING_DEPLOY,
                arn,
                request.desired_count,
                {WORKFLOW_ID_TAG: workflow.info().workflow_id},
            )
        await self._ecs.wait_steady(
            request.service_name,
            change,
            arn,
            request.stage_timeouts.rolling_deploy,
            alarms=request.verification.alarms,
        )
        # Rolled out: nothing left that a cancel rolls back, unless the watch after it does.
        state.main_service_touched = self._watch.planned
        await self._scaling.restore()

    def _may_have_been_created_before(self) -> None:
        """From the start of the canary deploy, whatever ends the run deletes the canary and
        the baseline, even before this run has got to their CreateService: an earlier attempt
        of one of its workflow tasks may have created them, and nothing in the history says
        so. A task that timed out (a worker busy past the workflow task timeout) or whose
        worker died is lost with the results of the local activities it ran, CreateService's
        included; the attempt that takes over starts again from the last completed task, and
        a cancel recorded meanwhile reaches it before it gets back there (the cancellation
        chaos bench, issue 21). Not only when `calls_may_repeat()`: a replay (a query on the
        closed run, an evicted run) must make the same calls as the run it replays. Deleting
        a service never created finds it already gone; the first look still removes them as
        leftovers when the run goes on."""
        self._state.canary_may_exist = True
        self._state.baseline_may_exist = self._require_request().baseline_service_name is not None

    async def _wait_out_freeze(self) -> None:
        """While a freeze window of the platform policy (as last read) holds, wait until it
        ends, unless overridden (workflows.hold). A release train's deployment does not: its
        train holds between waves."""
        if self._require_request().train is None:
            await self._run.hold.wait_out_freeze(
                self._gate.policy, lambda: self._notifier.send("frozen", self.status())
            )

    def _refusal(self, reason: str) -> StageFailure:
        """A refused deployment changes nothing, nor did any attempt of it (each refuses on
        what it saw before its first change): nothing for the cleanup path to delete."""
        self._state.canary_may_exist = self._state.baseline_may_exist = False
        return StageFailure(Stage.CANARY_DEPLOY, reason, REFUSED)

    # --- Bookkeeping ------------------------------------------------------------------------

    async def _learn_from_worker(self, checks: StartChecks) -> None:
        """Decisions sent with the start waited for the platform policy: they are taken before
        the first change to ECS. A workflow that upserts an unregistered search attribute
        never moves again: run unlisted instead, and say how to fix it."""
        policy = checks.policy or PlatformPolicy(
            require_signed_decisions=checks.signed_decisions_required
        )
        await self._desk.learn_policy(policy)
        if checks.missing_search_attributes:
            self._state.search_attributes_registered = False
            warning = unlisted_warning(checks.missing_search_attributes)
            workflow.logger.warning(warning, extra=self._run.log_context())

    async def _finish(self, outcome: Outcome, reason: str | None) -> DeploymentResult:
        request, state = self._require_request(), self._state
        # Safe message handlers: none may still be running when the run closes.
        self._desk.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        state.outcome = outcome
        self._run.enter(Stage.FINISHED, sa.DEPLOYMENT_OUTCOME.value_set(outcome.value))
        result = state.result(request, self._gate, reason)
        self._notifier.send("finished", self.status())
        await self._notifier.finish()
        keep_a_cancelled_result_for_the_train(self._run, result)
        return result

    def _require_request(self) -> DeploymentRequest:
        assert self._request is not None, "run() fails at once when the request is invalid"
        return self._request
