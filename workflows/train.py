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

A train of 1,000 keeps its history short by continuing as new (`_continue_as_new`), carrying
its progress: its deployments are abandoned children, steered by workflow id and run from
whichever run is current; each says when it ends (`deployment_ended`) and the train reads the
result from Temporal (activities.train.ended_deployments).
"""

from __future__ import annotations

import asyncio
import builtins
from dataclasses import replace
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import (
    ApplicationError,
    CancelledError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ExternalWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.search_attributes import missing_search_attributes
    from activities.train import ended_deployments, running_deployments
    from ecs_canary import train as train_contract
    from ecs_canary.gate import Gate
    from ecs_canary.models import (
        Decision,
        DecisionAction,
        DeploymentResult,
        Outcome,
    )
    from ecs_canary.names import TRAIN_WORKFLOW_TYPE, WORKFLOW_TYPE
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.request import DeploymentRequest
    from ecs_canary.text import duration_text
    from ecs_canary.train import (
        CANARY_VERIFIED_SIGNAL,
        DEPLOYMENT_ENDED_SIGNAL,
        TRAIN_DECISION_SIGNAL,
        CanaryVerified,
        DeploymentEnded,
        DeploymentRun,
        DeploymentRunEnd,
        EndedDeploymentsInput,
        TrainContinued,
        TrainDecision,
        TrainDeployment,
        TrainEnd,
        TrainOutcome,
        TrainProgress,
        TrainRequest,
        TrainResult,
        TrainStatus,
        TrainWaveStatus,
        service_named_twice,
    )
    from workflows.calls import settle, start_checks, together
    from workflows.decision_messages import DecisionMessages
    from workflows.decisions import DecisionDesk
    from workflows.failures import StageFailure, failure_reason
    from workflows.hold import Hold, serve_hold_messages
    from workflows.metrics import train_ended
    from workflows.notifications import Notifier, Receivers
    from workflows.payloads import NO_ARGUMENT, read_argument
    from workflows.preflight import REFUSED
    from workflows.presentation import decision_text, invalid_request_text
    from workflows.train_hold import relay_holds
    from workflows.train_presentation import train_details
    from workflows.train_put_back import put_back
    from workflows.train_sent import SentRecord
    from workflows.train_state import TrainState, outcome_of

TRAIN_STOPPED = "TrainStopped"
# Who decides what no person decided: the train's own approvals and the line's rejections.
TRAIN = "ecs-canary-train"
_RUNNING_CHECK_TIMEOUT = timedelta(minutes=5)
_READ_ENDS_TIMEOUT = timedelta(minutes=5)
# How long the train waits for news of a wave before it looks at every run in flight (one
# terminated by hand never says that it ended).
_SWEEP_EVERY = timedelta(minutes=10)
# A deployment's stages while its run is in flight.
_IN_FLIGHT = ("canary", "verified", "promoting")


# What a deployment reports to its train.
_Report = TypeVar("_Report", CanaryVerified, DeploymentEnded)


def _log_context() -> dict[str, str]:
    """The fields on every line a train logs about its notifications."""
    return {"workflow_id": workflow.info().workflow_id}


@workflow.defn(name=TRAIN_WORKFLOW_TYPE)
class EcsReleaseTrain(DecisionMessages):
    RUN_KIND = "train"

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
        # The deployments' runs, by workflow id: those being started now, the run each one
        # started (from any run of the train), the decision each was sent, those cancelled,
        # and those that said they ended whose result the train has not read yet.
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._run_ids: dict[str, str] = {}
        self._told: dict[str, TrainDecision] = {}
        self._cancelled: set[str] = set()
        self._ended: set[str] = set()
        # An earlier run of the train stopped the line and was putting services back.
        self._putting_back = False
        # What the train sent, in its memo, where its deployments check it.
        self._sent = SentRecord()
        payload = read_argument(request)
        try:
            continued = self._continued(payload)
            if continued is None:
                self._request = TrainRequest.model_validate(payload)
                # The same hold: the desk and the pause messages keep it.
                self._state = replace(TrainState.planned(self._request), hold=self._state.hold)
            else:
                self._resume(continued)
        except ValidationError as err:
            self._invalid = invalid_request_text(err, payload, "train request")
            return
        train = self._require_request()
        self._gate.configure(train.gate_settings())
        receivers = Receivers(
            train.notifications, self._state.notifications, train.gate_settings(), _log_context
        )
        self._notifier = Notifier(receivers)

    @staticmethod
    def _continued(payload: Any) -> TrainContinued | None:
        """The progress an earlier run carried over, when Temporal started this run as its
        continuation (a client's input is always a request)."""
        if workflow.info().continued_run_id is None:
            return None
        return TrainContinued.model_validate(payload)

    def _resume(self, continued: TrainContinued) -> None:
        progress = continued.progress
        self._request = continued.request
        # The same hold (the desk and the pause messages keep it), as the earlier run left it.
        hold = self._state.hold
        hold.paused, hold.freeze_overridden_by = progress.paused, progress.freeze_overridden_by
        self._state = replace(
            TrainState.resumed(
                progress.waves,
                progress.wave,
                progress.stop_reason,
                progress.rolled_out,
                progress.notifications,
            ),
            hold=hold,
        )
        self._run_ids, self._told = progress.run_ids, progress.told
        self._cancelled, self._ended = set(progress.cancelled), set(progress.ended)
        self._policy, self._putting_back = progress.policy, progress.putting_back

    # --- Messages ---------------------------------------------------------------------------

    @workflow.query(description="Where the train stands: waves, each service, the gate.")
    def status(self) -> TrainStatus:
        return self._state.status(self._request.name if self._request else "", self._gate)

    @workflow.signal(
        name=CANARY_VERIFIED_SIGNAL,
        description="A deployment of the train: its canary passed its automatic verification.",
    )
    def canary_verified_signal(self, report: RawValue = NO_ARGUMENT) -> None:
        found = self._reported_by(report, CanaryVerified, CANARY_VERIFIED_SIGNAL, ("canary",))
        if found is not None:
            verified, row = found
            row.stage, row.verification = "verified", verified.summary

    @workflow.signal(
        name=DEPLOYMENT_ENDED_SIGNAL,
        description="A deployment of the train: its run ends now (the train reads its result).",
    )
    def deployment_ended_signal(self, report: RawValue = NO_ARGUMENT) -> None:
        found = self._reported_by(report, DeploymentEnded, DEPLOYMENT_ENDED_SIGNAL, _IN_FLIGHT)
        if found is not None:
            self._ended.add(found[1].workflow_id)

    def _reported_by(
        self, report: RawValue, model: type[_Report], signal: str, stages: tuple[str, ...]
    ) -> tuple[_Report, TrainDeployment] | None:
        """A deployment's report and its row, if it is readable and comes from a deployment
        of this train at one of `stages` (else logged and None)."""
        try:
            said = model.model_validate(read_argument(report))
        except ValidationError:
            workflow.logger.warning(f"Ignored an unreadable {signal} report")
            return None
        row = self._state.row(said.workflow_id)
        if row is None or row.stage not in stages:
            workflow.logger.warning(f"Ignored {signal} from {said.workflow_id}")
            return None
        return said, row

    # --- The run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: RawValue = NO_ARGUMENT) -> TrainResult:
        """Refuse what cannot run, then the waves in order until the line stops."""
        if self._invalid is not None:
            raise ApplicationError(self._invalid, type="InvalidRequest", non_retryable=True)
        train = self._require_request()
        self._details = asyncio.ensure_future(self._keep_details_current())
        relay = relay_holds(self._state.hold, self._sent, self._in_flight_runs)
        self._relay = asyncio.ensure_future(relay)
        if workflow.info().continued_run_id is None:
            await self._learn_policy()
            refused = service_named_twice(train) or await self._services_deploying_already()
            if refused is not None:
                self._state.stop(refused)
                raise await self._end_stopped(REFUSED, f"Refused: {refused}")
        else:
            await self._desk.learn_policy(self._policy or PlatformPolicy())
        try:
            if not self._putting_back:
                await self._waves()
        except asyncio.CancelledError:
            self._state.stop("the train was cancelled")
            wave = self._state.waves[self._state.wave - 1]
            wave.state = "stopped"
            await self._stop_the_wave(wave)
            await self._put_back_if_asked(may_continue=False)
            result = await self._finish("cancelled")
            raise CancelledError("Train cancelled", result.model_dump(mode="json")) from None
        if self._state.stopped:
            await self._put_back_if_asked(may_continue=True)
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

    async def _waves(self) -> None:
        """The waves in order, from the one an earlier run left running, until the line
        stops."""
        waves = self._require_request().waves
        for index in range(max(self._state.wave - 1, 0), len(waves)):
            state = self._state.waves[index].state
            if state == "succeeded":  # the wave an earlier run ended with
                continue
            if state == "pending":
                await self._continue_between_waves_if_due()
                # Paused or frozen: no next wave (the policy as last read; workflows.hold).
                await self._hold.wait_out_freeze(self._gate.policy)
            await self._wave(index)
            if self._state.stopped:
                return

    async def _wave(self, index: int) -> None:
        """Start the wave's deployments (at most `max_parallel` in flight) and steer them until
        every one has ended; continue as new on the way when the history grows long."""
        train, state = self._require_request(), self._state
        wave = state.waves[index]
        state.wave = index + 1
        if wave.state == "pending":
            wave.state = "running"
            if index > 0:
                self._next_gate()
                await self._desk.refresh_policy()
        elif wave.decision is not None:  # continued after the gate had decided
            self._gate.decision = wave.decision
        # The platform policy may require a person where the request asks for none.
        gated = train.gated(index) or self._gate.automatic_approval_refusal("bake") is not None
        requests = train.waves[index].deployments
        if gated and len(requests) > train.max_parallel:
            state.stop(
                f"wave {wave.name}: the platform policy requires approval, and its "
                f"{len(requests)} canaries exceed max_parallel ({train.max_parallel})"
            )
        gate_timer: asyncio.Task[None] | None = None
        while not self._wave_over(wave):
            self._start_deployments(wave, requests)
            try:
                await workflow.wait_condition(
                    lambda: self._something_to_do(wave, gated), timeout=_SWEEP_EVERY
                )
            except builtins.TimeoutError:
                # A run terminated by hand says nothing: look at every one in flight.
                await self._read_ends(state.in_flight(wave), wait=False)
            undecided = self._gate.decision is None  # (a continued run may have the decision)
            if gated and gate_timer is None and undecided and self._all_verified(wave.deployments):
                self._gate.open(workflow.now())
                wave.state = "gate_open"
                gate_timer = asyncio.ensure_future(self._time_the_gate())
                self._notifier.send("gate_open", self.status(), wave.name)
            if self._continue_as_new_due(in_wave=True) and self._quiet(wave):
                self._continue_as_new()
            await self._read_ends([row for row in state.in_flight(wave) if self._reported(row)])
            if wave.state == "gate_open" and self._gate.decision is not None:
                # decided: the canaries are promoted or rejected
                wave.state, wave.decision = "running", self._gate.decision
                self._notifier.send("decided", self.status(), wave.name)
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

    def _wave_over(self, wave: TrainWaveStatus) -> bool:
        """Every deployment of the wave has ended, or will never start."""
        if self._starting or self._state.in_flight(wave):
            return False
        return self._state.stopped or all(row.stage == "finished" for row in wave.deployments)

    def _start_deployments(self, wave: TrainWaveStatus, requests: list[DeploymentRequest]) -> None:
        """Start deployments of the wave while fewer than `max_parallel` are in flight, the
        line runs, and the train is not about to continue as new."""
        if self._state.stopped or self._continue_as_new_due(in_wave=True) or self._hold.paused:
            return  # a paused train starts no next deployment
        free = self._require_request().max_parallel - len(self._state.in_flight(wave))
        for row, request in zip(wave.deployments, requests, strict=True):
            if free <= 0:
                return
            if row.stage == "not_started":
                row.stage = "canary"
                free -= 1
                self._starting[row.workflow_id] = asyncio.ensure_future(self._start(row, request))

    def _all_verified(self, rows: list[TrainDeployment]) -> bool:
        return not self._state.stopped and all(row.stage == "verified" for row in rows)

    def _something_to_do(self, wave: TrainWaveStatus, gated: bool) -> bool:
        rows = wave.deployments
        if self._wave_over(wave) or any(self._reported(row) for row in rows):
            return True
        if self._continue_as_new_due(in_wave=True) and self._quiet(wave):
            return True
        if self._state.stopped or self._gate.rejected:
            return any(self._to_stop(row) for row in rows)
        startable = not self._continue_as_new_due(in_wave=True) and not self._hold.paused
        if startable and any(row.stage == "not_started" for row in rows):
            in_flight = len(self._state.in_flight(wave))
            if in_flight < self._require_request().max_parallel:
                return True  # a slot came free
        if gated and not self._gate.is_open and self._gate.decision is None:
            return self._all_verified(rows)
        return (not gated or self._gate.approved) and any(self._to_approve(row) for row in rows)

    def _started(self, row: TrainDeployment) -> bool:
        """Its run is known (started by this run of the train or an earlier one)."""
        return row.workflow_id in self._run_ids and row.workflow_id not in self._starting

    def _reported(self, row: TrainDeployment) -> bool:
        """Its run said it ended, and the train has not read the result yet."""
        return row.workflow_id in self._ended and self._started(row)

    def _to_approve(self, row: TrainDeployment) -> bool:
        """A verified canary not told yet, once its start is recorded here (its report may
        come in the same workflow task as its start)."""
        verified = row.stage == "verified" and row.workflow_id not in self._told
        return verified and self._started(row)

    def _to_stop(self, row: TrainDeployment) -> bool:
        """A running deployment the stopped line has not yet rejected or cancelled."""
        told = self._told.get(row.workflow_id)
        running = row.stage in _IN_FLIGHT and self._started(row)
        return running and (
            told is None or (told.action == "approve" and row.workflow_id not in self._cancelled)
        )

    async def _pass_decisions(self, rows: list[TrainDeployment], gated: bool, wave: str) -> None:
        """Send each running deployment of the wave what it is owed: the gate's approval (or
        the train's own, ungated), or, once the line stopped, a rejection or a cancel."""
        if self._state.stopped:
            rejection = self._rejection(wave)
            to_stop = list(filter(self._to_stop, rows))
            approved = [row for row in to_stop if row.workflow_id in self._told]
            rejected = [row for row in to_stop if row.workflow_id not in self._told]
            # approved: its rollout is stopped
            await together(*map(self._cancel, approved), self._tell(rejected, rejection))
            return
        approval = self._approval(gated, wave)
        if approval is not None:
            await self._tell(list(filter(self._to_approve, rows)), approval)

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

    async def _tell(self, rows: list[TrainDeployment], decision: TrainDecision) -> None:
        """Send `decision` to each of `rows`, once it is in the memo where each checks it
        (workflows.train_sent)."""
        if not rows:
            return
        for row in rows:
            self._told[row.workflow_id] = decision
            if decision.action == "approve":
                row.stage = "promoting"
        runs = {row.workflow_id: self._run_ids[row.workflow_id] for row in rows}
        self._sent.decisions({workflow_id: (run, decision) for workflow_id, run in runs.items()})
        await together(*(self._send(row, decision) for row in rows))

    async def _send(self, row: TrainDeployment, decision: TrainDecision) -> None:
        try:
            await self._deployment(row).signal(TRAIN_DECISION_SIGNAL, decision)
        except FailureError as err:  # it closed before the signal reached it
            workflow.logger.info(f"{row.workflow_id} took no decision: {failure_reason(err)[1]}")

    async def _cancel(self, row: TrainDeployment) -> None:
        """Cancel a deployment's run: it cleans up as it does alone (an approved one rolls
        back)."""
        self._cancelled.add(row.workflow_id)
        try:
            await self._deployment(row).cancel()
        except FailureError as err:  # it closed meanwhile: its result says how
            workflow.logger.info(f"{row.workflow_id} was not cancelled: {failure_reason(err)[1]}")

    def _deployment(self, row: TrainDeployment) -> ExternalWorkflowHandle[Any]:
        """The deployment's run this train started: by its workflow id and run, so that it
        reaches it from any run of the train (a run that continued has no child handle)."""
        return workflow.get_external_workflow_handle(
            row.workflow_id, run_id=self._run_ids[row.workflow_id]
        )

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

    async def _start(self, row: TrainDeployment, request: DeploymentRequest) -> None:
        """Start one deployment as a child run. It is abandoned when this run closes: the
        train continues as new with its deployments in flight, and a later run of the train
        steers them by workflow id and reads how each ended (`_read_ends`)."""
        train = self._require_request().name
        try:
            handle = await workflow.start_child_workflow(
                WORKFLOW_TYPE,
                {**request.model_dump(mode="json"), "train": workflow.info().workflow_id},
                id=row.workflow_id,
                task_queue=workflow.info().task_queue,
                result_type=DeploymentResult,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"{row.service} on {row.cluster} (train {train})",
            )
        except WorkflowAlreadyStartedError:
            why = f"already being deployed by another run of {row.workflow_id}"
            self._state.ended(row, TrainOutcome.FAILED, why)
        else:
            assert handle.first_execution_run_id is not None, "a started child has its run"
            self._run_ids[row.workflow_id] = handle.first_execution_run_id
        finally:
            del self._starting[row.workflow_id]

    async def _read_ends(self, rows: list[TrainDeployment], *, wait: bool = True) -> None:
        """Read from Temporal how the runs of `rows` ended (`wait`: each said it is ending)
        and record each outcome; a run still running is left in flight."""
        runs = [
            DeploymentRun(workflow_id=row.workflow_id, run_id=self._run_ids[row.workflow_id])
            for row in rows
            if self._started(row)
        ]
        if not runs:
            return
        ends = await workflow.execute_activity(
            ended_deployments,
            EndedDeploymentsInput(runs=runs, wait=wait),
            start_to_close_timeout=_READ_ENDS_TIMEOUT,
            summary=f"Read how {len(runs)} deployment(s) ended",
        )
        for end in ends:
            row = self._state.row(end.workflow_id)
            assert row is not None, "the train asked about its own deployments only"
            self._ended.discard(end.workflow_id)
            self._sent.forget(end.workflow_id)
            if end.result is not None and end.result.outcome == Outcome.SUCCEEDED:
                self._state.succeeded(row, end.result)
            else:
                self._state.ended(row, *self._outcome(row, end))

    def _outcome(self, row: TrainDeployment, end: DeploymentRunEnd) -> tuple[TrainOutcome, str]:
        """How a deployment that did not succeed ended, in the train's words."""
        result = end.result
        if end.cancelled or (result is not None and result.outcome == Outcome.CANCELLED):
            why = self._state.stop_reason or "its run was cancelled"
            told = self._told.get(row.workflow_id)
            if told is not None and told.action == "approve":
                return TrainOutcome.ROLLED_BACK, f"cancelled while rolling out ({why})"
            return TrainOutcome.REJECTED, f"cancelled ({why})"
        if result is None:
            return TrainOutcome.FAILED, end.failure or "its run ended without a result"
        why = result.reason or "no reason"
        return outcome_of(result), f"{end.failure_type}: {why}" if end.failure_type else why

    async def _stop_the_wave(self, wave: TrainWaveStatus) -> None:
        """The train was cancelled: cancel every deployment in flight and wait for each to
        clean up as it does alone."""
        while not self._wave_over(wave):
            await together(
                *(
                    self._cancel(row)
                    for row in self._state.in_flight(wave)
                    if self._started(row) and row.workflow_id not in self._cancelled
                )
            )
            await workflow.wait_condition(
                lambda: self._wave_over(wave)
                or any(self._reported(row) for row in wave.deployments)
                or any(
                    self._started(row) and row.workflow_id not in self._cancelled
                    for row in self._state.in_flight(wave)
                ),
            )
            await self._read_ends([row for row in wave.deployments if self._reported(row)])

    # --- Continue as new --------------------------------------------------------------------

    def _continue_as_new_due(self, *, in_wave: bool) -> bool:
        """Whether the history is long enough to continue as new: within a wave, only when the
        wave would not fit in one run (ecs_canary.train, CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS)."""
        if in_wave:
            limit = train_contract.CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS
        else:
            limit = train_contract.CONTINUE_AS_NEW_AFTER_EVENTS
        return workflow.info().get_current_history_length() >= limit

    async def _continue_between_waves_if_due(self) -> None:
        """Continue as new before the next wave when the history is long enough: nothing is in
        flight, so Temporal takes the continuation at once (no deployment's signal can come
        meanwhile and make it refuse it, and the worker replay the whole run)."""
        if self._continue_as_new_due(in_wave=False):
            await workflow.wait_condition(
                lambda: self._notifier.idle and workflow.all_handlers_finished()
            )
            self._continue_as_new()

    def _quiet(self, wave: TrainWaveStatus) -> bool:
        """Nothing of this run would be lost by continuing now: no deployment being started,
        no gate open (its partial approvals and timer live in this run), no message handler
        still running (a decision being verified), no notification on its way."""
        return (
            not self._starting
            and wave.state != "gate_open"
            and self._notifier.idle
            and workflow.all_handlers_finished()
        )

    def _continue_as_new(self) -> NoReturn:
        """Continue as new, carrying the train's progress (`TrainContinued`)."""
        state = self._state
        progress = TrainProgress(
            waves=state.waves,
            wave=state.wave,
            stop_reason=state.stop_reason,
            rolled_out=state.rolled_out,
            run_ids=self._run_ids,
            told=self._told,
            cancelled=sorted(self._cancelled),
            ended=sorted(self._ended),
            notifications=state.notifications,
            paused=state.hold.paused,
            freeze_overridden_by=state.hold.freeze_overridden_by,
            policy=self._policy,
            putting_back=self._putting_back,
        )
        workflow.continue_as_new(
            TrainContinued(request=self._require_request(), progress=progress),
            memo=self._sent.memo,
        )

    # --- The end ----------------------------------------------------------------------------

    async def _put_back_if_asked(self, *, may_continue: bool) -> None:
        """With `on_failure: "roll_back_train"`, put back every service the train rolled out,
        newest first, each until stable (workflows.train_put_back). A service that cannot be
        put back is reported `failed`, saying where it was left; the others are still put
        back. The train continues as new between two services when its history grows long
        (`may_continue`: not a cancelled train's, whose cancel this run holds)."""
        train, state = self._require_request(), self._state
        if train.on_failure != "roll_back_train":
            return
        self._putting_back = True
        requests = {d.workflow_id: d for wave in train.waves for d in wave.deployments}
        why = f"the line stopped: {state.stop_reason}"
        while state.rolled_out:
            if may_continue and self._continue_as_new_due(in_wave=False):
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._continue_as_new()
            rolled_out = state.rolled_out[-1]
            row = state.row(rolled_out.workflow_id)
            assert row is not None, "every rolled-out service has its row"
            try:
                done = await put_back(requests[row.workflow_id], rolled_out.previous, why)
            except StageFailure as failed:
                row.outcome, row.reason = TrainOutcome.FAILED, f"put back failed: {failed.reason}"
            else:
                row.outcome, row.reason = TrainOutcome.PUT_BACK, done
            state.rolled_out.pop()

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
        self._notifier.send("finished", self.status())
        await self._notifier.finish()
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

    def _in_flight_runs(self) -> dict[str, str]:
        """The deployments in flight, by workflow id: the run each one started."""
        return {
            row.workflow_id: self._run_ids[row.workflow_id]
            for wave in self._state.waves
            for row in self._state.in_flight(wave)
            if row.workflow_id in self._run_ids
        }

    def _require_request(self) -> TrainRequest:
        assert self._request is not None, "run() fails at once when the request is invalid"
        return self._request
