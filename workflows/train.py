"""EcsReleaseTrain: many services in waves, one decision per wave, and the line stopped at the
first failure (issue 25).

Each deployment is a child `EcsCanaryDeployment` with the workflow id it would have alone, so a
service is never deployed by two runs at once; its request names the train (`train`), so its
own gate never waits for a person: once its canary passed its automatic verification it tells
the train (`canary_verified`) and waits for the train's decision (`train_decision`,
workflows.train_member). A wave starts its deployments, at most `max_parallel` in flight; when
every canary of a gated wave has passed, the train's one gate opens (`approve` / `reject`,
signal and Update, with a deployment's payloads, tokens and refusals: the same `Gate` and
`DecisionDesk`) and its decision goes to every canary of the wave. An ungated wave's canaries
are approved by the train as each one passes.

Stop the line: a deployment that ends other than `succeeded` (a canary failed or rejected, a
rollout rolled back) or a rejected gate rejects the rest of the wave (their canaries are
deleted), cancels the wave's approved deployments still rolling out (each is rolled back as a
cancelled deployment is), starts nothing more, and ends the train as Failed with
`TrainStopped`. A cancel of the train cancels its deployments in flight. The result lists each
service's outcome and reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.search_attributes import missing_search_attributes
    from activities.train import running_deployments
    from ecs_canary.gate import Gate, GateRefusal, UpdateRefusal
    from ecs_canary.models import (
        Decision,
        DecisionAction,
        DecisionSource,
        DeploymentResult,
        Outcome,
    )
    from ecs_canary.names import TRAIN_WORKFLOW_TYPE, WORKFLOW_TYPE
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.text import duration_text
    from ecs_canary.train import (
        CANARY_VERIFIED_SIGNAL,
        TRAIN_DECISION_SIGNAL,
        CanaryVerified,
        TrainDecision,
        TrainDeployment,
        TrainEnd,
        TrainOutcome,
        TrainRequest,
        TrainResult,
        TrainStatus,
        service_named_twice,
    )
    from workflows.calls import settle, start_checks, together
    from workflows.decisions import Action, DecisionDesk
    from workflows.failures import StageFailure, failure_reason
    from workflows.hold import Hold, serve_hold_messages
    from workflows.metrics import train_ended
    from workflows.payloads import NO_ARGUMENT, read_argument
    from workflows.preflight import REFUSED
    from workflows.presentation import decision_text, invalid_request_text
    from workflows.train_hold import relay_holds
    from workflows.train_presentation import train_details
    from workflows.train_put_back import put_back
    from workflows.train_state import TrainState, outcome_of

TRAIN_STOPPED = "TrainStopped"
# Who decides what no person decided: the train's own approvals and the line's rejections.
TRAIN = "ecs-canary-train"
_RUNNING_CHECK_TIMEOUT = timedelta(minutes=5)

DeploymentHandle = ChildWorkflowHandle[Any, DeploymentResult]


@workflow.defn(name=TRAIN_WORKFLOW_TYPE)
class EcsReleaseTrain:
    @workflow.init
    def __init__(self, request: RawValue = NO_ARGUMENT) -> None:
        """Validate the request before any handler runs (a decision sent with the start meets
        the gate as the request configures it); no input can fail the first task."""
        self._state = TrainState()
        self._gate = self._new_gate()
        self._desk = DecisionDesk(self._gate, self._state.hold)
        serve_hold_messages(self._check, self._take, self.status)  # pause, resume, override_freeze
        self._request: TrainRequest | None = None
        self._invalid: str | None = None
        self._policy: PlatformPolicy | None = None
        # The wave's deployments running now, and the decision each was sent.
        self._children: dict[str, DeploymentHandle] = {}
        self._told: dict[str, DecisionAction] = {}
        self._cancelled: set[str] = set()
        # The current wave's deployments, each from its wait for a slot to its end.
        self._runs: list[asyncio.Task[None]] = []
        payload = read_argument(request)
        try:
            self._request = TrainRequest.model_validate(payload)
        except ValidationError as err:
            self._invalid = invalid_request_text(err, payload, "train request")
            return
        self._state = replace(TrainState.planned(self._request), hold=self._state.hold)
        self._gate.configure(self._request.gate_settings())

    # --- Messages ---------------------------------------------------------------------------

    @workflow.query(description="Where the train stands: waves, each service, the gate.")
    def status(self) -> TrainStatus:
        return self._state.status(self._request.name if self._request else "", self._gate)

    @workflow.signal(name="approve", description="Approve the wave's canaries at the gate.")
    async def approve_signal(self, decision: RawValue = NO_ARGUMENT) -> None:
        await self._take("approve", decision, "signal")

    @workflow.signal(name="reject", description="Reject the wave (stops the line).")
    async def reject_signal(self, decision: RawValue = NO_ARGUMENT) -> None:
        await self._take("reject", decision, "signal")

    @workflow.update(
        name="approve",
        description='Approve every canary of the wave, e.g. {"by": "alice"} or '
        '{"token": "<JWT>"}; answers with the status, or with why it was refused.',
    )
    async def approve_update(self, decision: RawValue = NO_ARGUMENT) -> TrainStatus:
        await self._take("approve", decision, "update")
        return self.status()

    @approve_update.validator
    def _validate_approve(self, decision: RawValue = NO_ARGUMENT) -> None:
        self._check("approve", decision)

    @workflow.update(
        name="reject",
        description='Reject the wave and stop the line, e.g. {"by": "alice", "reason": '
        '"errors up"}; answers with the status, or with why it was refused.',
    )
    async def reject_update(self, decision: RawValue = NO_ARGUMENT) -> TrainStatus:
        await self._take("reject", decision, "update")
        return self.status()

    @reject_update.validator
    def _validate_reject(self, decision: RawValue = NO_ARGUMENT) -> None:
        self._check("reject", decision)

    @workflow.signal(
        name=CANARY_VERIFIED_SIGNAL,
        description="A deployment of the train: its canary passed its automatic verification.",
    )
    def canary_verified_signal(self, report: RawValue = NO_ARGUMENT) -> None:
        try:
            verified = CanaryVerified.model_validate(read_argument(report))
        except ValidationError:
            workflow.logger.warning("Ignored an unreadable canary_verified report")
            return
        row = self._state.row(verified.workflow_id)
        if row is None or row.stage != "canary":
            workflow.logger.warning(f"Ignored canary_verified from {verified.workflow_id}")
            return
        row.stage, row.verification = "verified", verified.summary

    def _check(self, action: Action, decision: RawValue) -> None:
        if self._invalid is not None:
            raise GateRefusal(f"this train will not run: {self._invalid}")
        self._desk.check(action, read_argument(decision))

    async def _take(self, action: Action, decision: RawValue, via: DecisionSource) -> None:
        if self._invalid is not None:
            return  # the run fails at once with InvalidRequest; there is no gate to decide
        refusal = await self._desk.take(action, read_argument(decision), via)
        if refusal is not None and via == "update":
            raise UpdateRefusal(refusal)

    # --- The run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: RawValue = NO_ARGUMENT) -> TrainResult:
        """Refuse what cannot run, then the waves in order until the line stops."""
        if self._invalid is not None:
            raise ApplicationError(self._invalid, type="InvalidRequest", non_retryable=True)
        train = self._require_request()
        self._details = asyncio.ensure_future(self._keep_details_current())
        self._relay = asyncio.ensure_future(relay_holds(self._state.hold, self._children))
        await self._learn_policy()
        refused = service_named_twice(train) or await self._services_deploying_already()
        if refused is not None:
            self._state.stop(refused)
            raise await self._end_stopped(REFUSED, f"Refused: {refused}")
        try:
            for index in range(len(train.waves)):
                # Paused or frozen: no next wave (the policy as last read; workflows.hold).
                await self._hold.wait_out_freeze(self._gate.policy)
                await self._wave(index)
                if self._state.stopped:
                    break
        except asyncio.CancelledError:
            self._state.stop("the train was cancelled")
            self._state.waves[self._state.wave - 1].state = "stopped"
            await self._stop_the_wave()
            await self._put_back_if_asked()
            result = await self._finish("cancelled")
            raise CancelledError("Train cancelled", result.model_dump(mode="json")) from None
        if self._state.stopped:
            await self._put_back_if_asked()
            raise await self._end_stopped(
                TRAIN_STOPPED, f"The line stopped: {self._state.stop_reason}"
            )
        return await self._finish("succeeded")

    async def _learn_policy(self) -> None:
        """The platform policy, as a deployment reads it at its start (decisions sent with the
        start wait for it); a policy file the worker cannot read fails the train."""
        checks = await workflow.execute_local_activity(
            missing_search_attributes, [], **start_checks("Check the platform policy")
        )
        self._policy = checks.policy or PlatformPolicy(
            require_signed_decisions=checks.signed_decisions_required
        )
        await self._desk.learn_policy(self._policy)

    async def _services_deploying_already(self) -> str | None:
        """Why the train is refused when one of its services is being deployed now."""
        ids = [row.workflow_id for wave in self._state.waves for row in wave.deployments]
        running = await workflow.execute_activity(
            running_deployments,
            ids,
            start_to_close_timeout=_RUNNING_CHECK_TIMEOUT,
            summary=f"Check that none of the {len(ids)} services is being deployed",
        )
        if not running:
            return None
        shown = ", ".join(running[:10]) + (
            f" and {len(running) - 10} more" if len(running) > 10 else ""
        )
        return f"already being deployed: {shown}"

    # --- A wave -----------------------------------------------------------------------------

    async def _wave(self, index: int) -> None:
        """Start the wave's deployments (at most `max_parallel` in flight) and steer them until
        every one has ended."""
        train, state = self._require_request(), self._state
        wave = state.waves[index]
        state.wave = index + 1
        wave.state = "running"
        if index > 0:
            self._next_gate()
            await self._desk.refresh_policy()
        # The platform policy may require a person where the request asks for none.
        gated = train.gated(index) or self._gate.automatic_approval_refusal("bake") is not None
        deployments = train.waves[index].deployments
        if gated and len(deployments) > train.max_parallel:
            state.stop(
                f"wave {wave.name}: the platform policy requires approval, and its "
                f"{len(deployments)} canaries exceed max_parallel ({train.max_parallel})"
            )
        slots = asyncio.Semaphore(train.max_parallel)
        self._runs = runs = [
            asyncio.ensure_future(self._deploy(row, deployment.model_dump(mode="json"), slots))
            for row, deployment in zip(wave.deployments, deployments, strict=True)
        ]
        gate_timer: asyncio.Task[None] | None = None
        while not all(run.done() for run in runs):
            await workflow.wait_condition(
                lambda: (
                    self._something_to_do(wave.deployments, gated)
                    or all(run.done() for run in runs)
                )
            )
            if gated and gate_timer is None and self._all_verified(wave.deployments):
                self._gate.open(workflow.now())
                wave.state = "gate_open"
                gate_timer = asyncio.ensure_future(self._time_the_gate())
            if wave.state == "gate_open" and self._gate.decision is not None:
                wave.state = "running"  # decided: the canaries are promoted or rejected
            if self._gate.rejected:
                state.stop(f"wave {wave.name} rejected: {decision_text(self._gate.decision)}")
            await self._pass_decisions(wave.deployments, gated, wave.name)
        if gate_timer is not None and not gate_timer.done():
            gate_timer.cancel()
            await settle(gate_timer)
        self._gate.close()
        wave.decision = self._gate.decision if gated else None
        wave.state = "stopped" if state.stopped else "succeeded"

    def _next_gate(self) -> None:
        """A fresh gate for the next wave; the policy learned so far applies to it."""
        self._gate = self._new_gate()
        self._gate.configure(self._require_request().gate_settings())
        if self._policy is not None:
            self._gate.learn_policy(self._policy)
        self._desk.serve(self._gate)

    @staticmethod
    def _new_gate() -> Gate:
        """A gate of this run, whose refusals name the train's own commands."""
        info = workflow.info()
        return Gate(info.workflow_id, info.run_id, command="train approve|reject")

    def _all_verified(self, rows: list[TrainDeployment]) -> bool:
        return not self._state.stopped and all(row.stage == "verified" for row in rows)

    def _something_to_do(self, rows: list[TrainDeployment], gated: bool) -> bool:
        if self._state.stopped or self._gate.rejected:
            return any(self._to_stop(row) for row in rows)
        if gated and not self._gate.is_open and self._gate.decision is None:
            return self._all_verified(rows)
        return (not gated or self._gate.approved) and any(self._to_approve(row) for row in rows)

    def _to_approve(self, row: TrainDeployment) -> bool:
        return row.stage == "verified" and row.workflow_id not in self._told

    def _to_stop(self, row: TrainDeployment) -> bool:
        """A running deployment the stopped line has not yet rejected or cancelled."""
        told = self._told.get(row.workflow_id)
        running = row.workflow_id in self._children
        return running and (
            told is None or (told == "approve" and row.workflow_id not in self._cancelled)
        )

    async def _pass_decisions(self, rows: list[TrainDeployment], gated: bool, wave: str) -> None:
        """Send each running deployment of the wave what it is owed: the gate's approval (or
        the train's own, ungated), or, once the line stopped, a rejection or a cancel."""
        if self._state.stopped:
            rejection = self._rejection(wave)
            sends = []
            for row in filter(self._to_stop, rows):
                if row.workflow_id in self._told:  # approved: its rollout is stopped
                    self._cancelled.add(row.workflow_id)
                    self._children[row.workflow_id].cancel()
                else:
                    sends.append(self._tell(row, rejection))
            await together(*sends)
            return
        approval = self._approval(gated, wave)
        if approval is not None:
            await together(*(self._tell(row, approval) for row in rows if self._to_approve(row)))

    def _approval(self, gated: bool, wave: str) -> TrainDecision | None:
        """The approval the wave's verified canaries are owed now, if any: the gate's; with
        `approval: "once"`, the first wave's, by whoever gave it; with "none", the train's."""
        train, decision = self._require_request(), self._gate.decision
        if gated:
            if decision is None or decision.action != "approve":
                return None
            return self._relayed(wave, decision)
        first = self._state.waves[0]
        if train.approval == "once" and first.decision is not None:
            once = first.decision
            why = f"approved once for the train, at wave {first.name}: {once.reason or 'no reason'}"
            return self._relayed(wave, once, why)
        return self._own(wave, "approve", f'the train asks for no approval ("{train.approval}")')

    def _rejection(self, wave: str) -> TrainDecision:
        decision = self._gate.decision
        if decision is not None and decision.action == "reject":
            return self._relayed(wave, decision)
        return self._own(wave, "reject", f"the line stopped: {self._state.stop_reason}")

    def _relayed(self, wave: str, decision: Decision, reason: str | None = None) -> TrainDecision:
        """A decision of the train's gate, as its canaries record it: who decided, and how."""
        return TrainDecision(
            train=workflow.info().workflow_id,
            wave=wave,
            action=decision.action,
            by=decision.by,
            reason=decision.reason if reason is None else reason,
            signed=decision.signed,
            approvals=decision.approvals if decision.action == "approve" else [],
        )

    def _own(self, wave: str, action: DecisionAction, reason: str) -> TrainDecision:
        """A decision no person took: the train's approval, or the stopped line's rejection."""
        return TrainDecision(
            train=workflow.info().workflow_id, wave=wave, action=action, by=TRAIN, reason=reason
        )

    async def _tell(self, row: TrainDeployment, decision: TrainDecision) -> None:
        self._told[row.workflow_id] = decision.action
        if decision.action == "approve":
            row.stage = "promoting"
        handle = self._children.get(row.workflow_id)
        if handle is None:
            return  # ended meanwhile: its result says why
        try:
            await handle.signal(TRAIN_DECISION_SIGNAL, decision)
        except FailureError as err:  # it closed before the signal reached it
            workflow.logger.info(f"{row.workflow_id} took no decision: {failure_reason(err)[1]}")

    async def _time_the_gate(self) -> None:
        """The gate's timer: no decision within `timeout_seconds` decides by `on_timeout`; an
        approval is subject to the platform policy, as a deployment's is."""
        train, gate = self._require_request(), self._gate
        limit = train.timeout_seconds
        if not await self._hold.timer(  # stops while the train is paused
            limit,
            f"Train gate: wait for approval ({duration_text(limit)})",
            lambda: gate.decision is not None or self._state.stopped,
        ):
            return
        action: DecisionAction = train.on_timeout
        why = f"no decision within {duration_text(limit)}"
        if action == "approve":
            await self._desk.refresh_policy()
            if refused := gate.automatic_approval_refusal("timeout"):
                action, why = "reject", f"{why}; {refused}"
            await self._hold.before_next_step()
        if gate.decision is None:
            gate.decide_automatically(action, "timeout", why, workflow.now(), by=TRAIN)

    # --- A deployment -----------------------------------------------------------------------

    async def _deploy(
        self, row: TrainDeployment, deployment: dict[str, Any], slots: asyncio.Semaphore
    ) -> None:
        """One deployment as a child run, once a slot is free and while the line runs."""
        async with slots:
            await self._hold.before_next_step()  # a paused train starts no next deployment
            if self._state.stopped:
                return  # never started: `never_started` records it
            row.stage = "canary"
            train = self._require_request().name
            try:
                handle = await workflow.start_child_workflow(
                    WORKFLOW_TYPE,
                    {**deployment, "train": workflow.info().workflow_id},
                    id=row.workflow_id,
                    task_queue=workflow.info().task_queue,
                    result_type=DeploymentResult,
                    # A train that is terminated still has its canaries cleaned up.
                    parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                    static_summary=f"{row.service} on {row.cluster} (train {train})",
                )
            except WorkflowAlreadyStartedError:
                why = f"already being deployed by another run of {row.workflow_id}"
                self._state.ended(row, TrainOutcome.FAILED, why)
                return
            self._children[row.workflow_id] = handle
            try:
                result = await handle
            except ChildWorkflowError as err:
                self._state.ended(row, *self._failure(row, err))
            else:
                if result.outcome == Outcome.SUCCEEDED:
                    self._state.succeeded(row, result)
                else:
                    self._state.ended(row, outcome_of(result), result.reason)
            finally:
                del self._children[row.workflow_id]

    def _failure(self, row: TrainDeployment, err: ChildWorkflowError) -> tuple[TrainOutcome, str]:
        """How a failed or cancelled deployment ended, from the result its failure carries."""
        cause = err.cause
        if isinstance(cause, CancelledError):
            why = self._state.stop_reason or "its run was cancelled"
            if self._told.get(row.workflow_id) == "approve":
                return TrainOutcome.ROLLED_BACK, f"cancelled while rolling out ({why})"
            return TrainOutcome.REJECTED, f"cancelled ({why})"
        if isinstance(cause, ApplicationError) and cause.details:
            try:
                result = DeploymentResult.model_validate(cause.details[0])
            except ValidationError:
                pass
            else:
                return outcome_of(result), f"{cause.type}: {result.reason}"
        kind, why = failure_reason(cause or err)
        return TrainOutcome.FAILED, f"{kind}: {why}"

    async def _stop_the_wave(self) -> None:
        """The train was cancelled: cancel every deployment in flight and wait for each to
        clean up as it does alone."""
        for workflow_id, handle in self._children.items():
            self._cancelled.add(workflow_id)
            handle.cancel()
        # Those still waiting for a slot see the stopped line and start nothing.
        await workflow.wait_condition(lambda: all(run.done() for run in self._runs))

    # --- The end ----------------------------------------------------------------------------

    async def _put_back_if_asked(self) -> None:
        """With `on_failure: "roll_back_train"`, put back every service the train rolled out,
        newest first, each until stable (workflows.train_put_back). A service that cannot be
        put back is reported `failed`, saying where it was left; the others are still put
        back."""
        train, state = self._require_request(), self._state
        if train.on_failure != "roll_back_train":
            return
        requests = {d.workflow_id: d for wave in train.waves for d in wave.deployments}
        why = f"the line stopped: {state.stop_reason}"
        for workflow_id, previous in reversed(state.rolled_out):
            row = state.row(workflow_id)
            assert row is not None, "every rolled-out service has its row"
            try:
                done = await put_back(requests[workflow_id], previous, why)
            except StageFailure as failed:
                row.outcome, row.reason = TrainOutcome.FAILED, f"put back failed: {failed.reason}"
            else:
                row.outcome, row.reason = TrainOutcome.PUT_BACK, done

    async def _end_stopped(self, failure_type: str, message: str) -> ApplicationError:
        result = await self._finish("stopped")
        return ApplicationError(
            message, result.model_dump(mode="json"), type=failure_type, non_retryable=True
        )

    async def _finish(self, outcome: TrainEnd) -> TrainResult:
        self._desk.close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._gate.close()
        self._state.never_started()
        result = self._state.result(self._require_request().name, outcome)
        train_ended(outcome)
        # Drawn one last time, and nothing of the run left pending once it closes.
        for side_task in (self._details, self._relay):
            side_task.cancel()
            await settle(side_task)
        workflow.set_current_details(self._details_text())
        return result

    async def _keep_details_current(self) -> None:
        """The Web UI's summary line and current details follow the state (no command)."""
        while True:
            workflow.set_current_details(self._details_text())
            await workflow.wait_condition(
                lambda: self._details_text() != workflow.get_current_details()
            )

    def _details_text(self) -> str:
        info = workflow.info()
        return train_details(
            self._require_request(),
            self._state,
            self._gate,
            info.workflow_id,
            info.run_id,
            workflow.now(),
        )

    @property
    def _hold(self) -> Hold:
        return Hold(self._state.hold)

    def _require_request(self) -> TrainRequest:
        assert self._request is not None, "run() fails at once when the request is invalid"
        return self._request
