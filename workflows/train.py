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

A train of 1,000 keeps its history short by continuing as new (workflows.train_continue),
carrying its progress: its deployments are abandoned children, steered by workflow id and run
from whichever run is current; the train hears of each one's close from Temporal and reads the
result there (workflows.train_steering).

This module is the train's run: its messages, its waves in order, the stop of the line and its
end. Its parts: the gate's decisions and timer (workflows.train_gate), the deployments' runs
(workflows.train_steering), continue-as-new (workflows.train_continue), the state
(workflows.train_state), the Web UI details (workflows.train_presentation), the put back
(workflows.train_put_back) and the pause relayed to the deployments (workflows.train_hold).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Literal, NoReturn

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.search_attributes import missing_search_attributes
    from activities.train import running_deployments
    from ecs_canary import train as train_contract
    from ecs_canary.names import TRAIN_WORKFLOW_TYPE
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.request import DeploymentRequest
    from ecs_canary.train import (
        CANARY_VERIFIED_SIGNAL,
        CanaryVerified,
        TrainContinued,
        TrainDecision,
        TrainDeployment,
        TrainEnd,
        TrainOutcome,
        TrainRequest,
        TrainResult,
        TrainStatus,
        TrainWaveStatus,
        service_named_twice,
    )
    from workflows import train_continue, train_gate
    from workflows.calls import settle, start_checks, together, train_reads_runs
    from workflows.decision_messages import DecisionMessages
    from workflows.decisions import DecisionDesk
    from workflows.failures import StageFailure
    from workflows.hold import Hold, serve_hold_messages
    from workflows.metrics import train_ended
    from workflows.notifications import Notifier, Receivers
    from workflows.payloads import NO_ARGUMENT, read_argument
    from workflows.preflight import REFUSED
    from workflows.presentation import decision_text, invalid_request_text
    from workflows.train_hold import relay_holds
    from workflows.train_presentation import train_details
    from workflows.train_put_back import put_back
    from workflows.train_state import TrainState
    from workflows.train_steering import TrainDeployments
    from workflows.warm_up import WarmUpMessage

TRAIN_STOPPED = "TrainStopped"
# How often the train describes every run of a wave in flight: a timer of its own, not a
# timeout on each wait for news, which would cancel and start a timer (two events) every time a
# deployment ends. A run of the train hears of the close of each deployment it started from
# Temporal; one started by an earlier run (the train continued as new in the middle of a wave,
# or handed its deployments over) it hears of only by looking: it lists those closed from
# Temporal's visibility (every second while they end: ecs_canary.train.sweep_interval), and
# describes them all at this pace in case a close is missing from the listing.
_SWEEP_EVERY = timedelta(minutes=10)
# A sweep's kinds: a listing of the closes of handed-over runs, or a describe of every run.
_Sweep = Literal["listed", "described"]


def _log_context() -> dict[str, str]:
    """The fields on every line a train logs about its notifications."""
    return {"workflow_id": workflow.info().workflow_id}


@workflow.defn(name=TRAIN_WORKFLOW_TYPE)
class EcsReleaseTrain(DecisionMessages, WarmUpMessage):
    RUN_KIND = "train"

    @workflow.init
    def __init__(self, request: RawValue = NO_ARGUMENT) -> None:
        """Validate the request before any handler runs (a decision sent with the start meets
        the gate as the request configures it); no input can fail the first task."""
        self._state = TrainState()
        self._gate = train_gate.new_gate()
        self._desk = DecisionDesk(self._gate, self._state.hold)
        serve_hold_messages(self._check, self._take, self.status)  # pause, resume, override_freeze
        self._request: TrainRequest | None = None
        self._invalid: str | None = None
        self._policy: PlatformPolicy | None = None
        # The deployments' runs (workflows.train_steering).
        self._deployments = TrainDeployments()
        # An earlier run of the train stopped the line and was putting services back.
        self._putting_back = False
        # The wave's sweep timer has fired: look at the runs in flight (None: not due).
        self._sweep_due: _Sweep | None = None
        # Listings in a row that found no handed-over run closed (they come less often).
        self._listings_without_ends = 0
        # The wave's own timers: its sweeps, and its gate's timeout once the gate opens.
        self._wave_timers: list[asyncio.Future[None]] = []
        payload = read_argument(request)
        try:
            continued = train_continue.continued(payload)
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

    def _resume(self, carried: TrainContinued) -> None:
        progress = carried.progress
        self._request = carried.request
        self._state = train_continue.resumed_state(progress, self._state.hold)
        self._deployments = TrainDeployments(progress)
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
        """Taken from a deployment of this train whose canary is in flight; anything else is
        logged and ignored."""
        try:
            verified = CanaryVerified.model_validate(read_argument(report))
        except ValidationError:
            workflow.logger.warning(f"Ignored an unreadable {CANARY_VERIFIED_SIGNAL} report")
            return
        row = self._state.row(verified.workflow_id)
        if row is None or row.stage != "canary":
            workflow.logger.warning(f"Ignored {CANARY_VERIFIED_SIGNAL} from {verified.workflow_id}")
            return
        row.stage, row.verification = "verified", verified.summary

    # --- The run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: RawValue = NO_ARGUMENT) -> TrainResult:
        """Refuse what cannot run, then the waves in order until the line stops."""
        if self._invalid is not None:
            raise ApplicationError(self._invalid, type="InvalidRequest", non_retryable=True)
        train = self._require_request()
        self._details = asyncio.ensure_future(self._keep_details_current())
        relay = relay_holds(self._state.hold, self._deployments.sent, self._in_flight_runs)
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
            for side_task in self._wave_timers:  # `_stop_the_wave` sweeps anew
                side_task.cancel()
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
            **train_reads_runs(f"Check that none of the {len(ids)} services is being deployed"),
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
            wave.state, wave.began = "running", workflow.now()
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
        # No person decides the wave: each deployment starts with the train's approval.
        approved = (
            None if gated else train_gate.approval(train, self._gate, state, False, wave.name)
        )
        gate_timer: asyncio.Task[None] | None = None
        # A sweep asked for in the wave before is of no use here, nor its listings' count.
        self._sweep_due, self._listings_without_ends = None, 0
        sweeps = asyncio.ensure_future(self._ask_for_sweeps(wave))
        self._wave_timers = [sweeps]
        while not self._wave_over(wave):
            self._start_deployments(wave, requests, approved, gated)
            await workflow.wait_condition(
                lambda: self._sweep_due is not None or self._something_to_do(wave, gated)
            )
            if self._sweep_due is not None:
                await self._sweep(wave)
            undecided = self._gate.decision is None  # (a continued run may have the decision)
            if gated and gate_timer is None and undecided and self._all_verified(wave.deployments):
                self._gate.open(workflow.now())
                wave.state = "gate_open"
                timer = train_gate.time_the_gate(
                    train, self._gate, self._desk, self._hold, lambda: self._state.stopped
                )
                gate_timer = asyncio.ensure_future(timer)
                self._wave_timers.append(gate_timer)
                self._notifier.send("gate_open", self.status(), wave.name)
            if self._continuing_in_wave(wave, gated) and self._quiet(wave):
                self._continue_as_new()
            reported = filter(self._deployments.reported, state.in_flight(wave))
            await self._deployments.read_ends(state, list(reported))
            if wave.state == "gate_open" and self._gate.decision is not None:
                # decided: the canaries are promoted or rejected
                wave.state, wave.decision = "running", self._gate.decision
                self._notifier.send("decided", self.status(), wave.name)
            if self._gate.rejected:
                state.stop(f"wave {wave.name} rejected: {decision_text(self._gate.decision)}")
            await self._pass_decisions(wave.deployments, gated, wave.name)
        for side_task in self._wave_timers:
            if not side_task.done():
                side_task.cancel()
                await settle(side_task)
        self._gate.close()
        wave.decision = self._gate.decision if gated else None
        wave.state = "stopped" if state.stopped else "succeeded"

    def _next_gate(self) -> None:
        """A fresh gate for the next wave; the policy learned so far applies to it."""
        self._gate = train_gate.new_gate()
        self._gate.configure(self._require_request().gate_settings())
        if self._policy is not None:
            self._gate.learn_policy(self._policy)
        self._desk.serve(self._gate)

    def _wave_over(self, wave: TrainWaveStatus) -> bool:
        """Every deployment of the wave has ended, or will never start."""
        if self._deployments.starting or self._state.in_flight(wave):
            return False
        return self._state.stopped or all(row.stage == "finished" for row in wave.deployments)

    def _start_deployments(
        self,
        wave: TrainWaveStatus,
        requests: list[DeploymentRequest],
        approved: TrainDecision | None,
        gated: bool,
    ) -> None:
        """Start deployments of the wave while fewer than `max_parallel` are in flight (and
        fewer than `STARTS_AT_ONCE` recent starts are being made:
        ecs_canary.train.room_to_start), the line runs, and the train is not about to continue
        as new; `approved`: the approval each starts with, in a wave no person decides."""
        continuing = self._continuing_in_wave(wave, gated)
        if self._state.stopped or continuing or self._hold.paused:
            return  # a paused train starts no next deployment
        in_flight = len(self._state.in_flight(wave))
        free = min(
            self._require_request().max_parallel - in_flight, self._deployments.room_to_start()
        )
        for row, request in zip(wave.deployments, requests, strict=True):
            if free <= 0:
                return
            if row.stage == "not_started":
                row.stage = "canary"
                free -= 1
                name = self._require_request().name
                self._deployments.start(self._state, row, request, name, approved)

    def _all_verified(self, rows: list[TrainDeployment]) -> bool:
        return not self._state.stopped and all(row.stage == "verified" for row in rows)

    async def _ask_for_sweeps(self, wave: TrainWaveStatus) -> None:
        """Ask for a sweep for as long as the wave lasts: a listing of closes while runs an
        earlier run of the train started are in flight (`sweep_interval`), and a describe of
        every run in flight every `_SWEEP_EVERY`."""
        described_at = workflow.now()
        while True:
            if self._deployments.inherited(self._state, wave):
                every = train_contract.sweep_interval(self._listings_without_ends)
            else:
                every = _SWEEP_EVERY
            await workflow.sleep(every, summary="sweep the wave's runs")
            if workflow.now() - described_at >= _SWEEP_EVERY:
                described_at, self._sweep_due = workflow.now(), "described"
            else:
                self._sweep_due = "listed"
            await workflow.wait_condition(lambda: self._sweep_due is None)

    async def _sweep(self, wave: TrainWaveStatus) -> None:
        """The sweep that is due: the closes Temporal lists among the runs an earlier run of
        the train started (since the wave began), or a describe of every run in flight."""
        kind, self._sweep_due = self._sweep_due, None
        deployments, state = self._deployments, self._state
        inherited = deployments.inherited(state, wave)
        if kind == "listed" and wave.began is not None:
            ended = await deployments.read_ends(
                state, inherited, wait=False, closed_since=wave.began
            )
            self._listings_without_ends = 0 if ended else self._listings_without_ends + 1
            return
        await deployments.read_ends(state, inherited or state.in_flight(wave), wait=False)

    def _continuing_in_wave(self, wave: TrainWaveStatus, gated: bool) -> bool:
        """Whether this run continues as new at the wave's next quiet moment: its history is too
        long for the wave, or, in a wave no person decides (`gated` false), it has started
        `HAND_OVER_AFTER_STARTS` deployments still in flight, whose closes would keep it busy
        (ecs_canary.train)."""
        if train_continue.due(in_wave=True):
            return True
        handing_over = train_contract.HAND_OVER_AFTER_STARTS
        return not gated and self._deployments.hearing_of(self._state, wave) >= handing_over

    def _something_to_do(self, wave: TrainWaveStatus, gated: bool) -> bool:
        rows, deployments = wave.deployments, self._deployments
        if self._wave_over(wave) or any(map(deployments.reported, rows)):
            return True
        continuing = self._continuing_in_wave(wave, gated)
        if continuing and self._quiet(wave):
            return True
        if self._state.stopped or self._gate.rejected:
            return any(map(deployments.to_stop, rows))
        startable = not continuing and not self._hold.paused
        startable = startable and deployments.room_to_start() > 0
        if startable and any(row.stage == "not_started" for row in rows):
            in_flight = len(self._state.in_flight(wave))
            if in_flight < self._require_request().max_parallel:
                return True  # a slot came free
        if gated and not self._gate.is_open and self._gate.decision is None:
            return self._all_verified(rows)
        return (not gated or self._gate.approved) and any(map(deployments.to_approve, rows))

    async def _pass_decisions(self, rows: list[TrainDeployment], gated: bool, wave: str) -> None:
        """Send each running deployment of the wave what it is owed: the gate's approval (or
        the train's own, ungated), or, once the line stopped, a rejection or a cancel."""
        if self._state.stopped:
            rejection = train_gate.rejection(self._gate, self._state, wave)
            deployments = self._deployments
            to_stop = list(filter(deployments.to_stop, rows))
            approved = [row for row in to_stop if row.workflow_id in deployments.told]
            rejected = [row for row in to_stop if row.workflow_id not in deployments.told]
            # approved: its rollout is stopped
            stops = map(deployments.cancel, approved)
            await together(*stops, deployments.tell(rejected, rejection))
            return
        train = self._require_request()
        approval = train_gate.approval(train, self._gate, self._state, gated, wave)
        if approval is not None:
            await self._deployments.tell(list(filter(self._deployments.to_approve, rows)), approval)

    # --- A deployment -----------------------------------------------------------------------

    async def _stop_the_wave(self, wave: TrainWaveStatus) -> None:
        """The train was cancelled: cancel every deployment in flight and wait for each to
        clean up as it does alone."""
        deployments, state = self._deployments, self._state
        # Those an earlier run started (handed over) are found closed only by sweeping.
        self._sweep_due, self._listings_without_ends = None, 0
        sweeps = asyncio.ensure_future(self._ask_for_sweeps(wave))
        while not self._wave_over(wave):
            await together(*map(deployments.cancel, deployments.to_cancel(state, wave)))
            await workflow.wait_condition(
                lambda: (
                    self._wave_over(wave)
                    or self._sweep_due is not None
                    or any(map(deployments.reported, wave.deployments))
                    or bool(deployments.to_cancel(state, wave))
                ),
            )
            if self._sweep_due is not None:
                await self._sweep(wave)
            await deployments.read_ends(state, list(filter(deployments.reported, wave.deployments)))
        sweeps.cancel()
        await settle(sweeps)

    # --- Continue as new --------------------------------------------------------------------

    async def _continue_between_waves_if_due(self) -> None:
        """Continue as new before the next wave when the history is long enough: nothing is in
        flight, so Temporal takes the continuation at once (no deployment's signal can come
        meanwhile and make it refuse it, and the worker replay the whole run)."""
        if train_continue.due(in_wave=False):
            await workflow.wait_condition(
                lambda: self._notifier.idle and workflow.all_handlers_finished()
            )
            self._continue_as_new()

    def _quiet(self, wave: TrainWaveStatus) -> bool:
        """Nothing of this run would be lost by continuing now: no deployment being started,
        no gate open (its partial approvals and timer live in this run), no message handler
        still running (a decision being verified), no notification on its way."""
        return (
            not self._deployments.starting
            and wave.state != "gate_open"
            and self._notifier.idle
            and workflow.all_handlers_finished()
        )

    def _continue_as_new(self) -> NoReturn:
        train_continue.continue_train(
            self._require_request(),
            self._state,
            self._deployments,
            self._policy,
            self._putting_back,
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
            if may_continue and train_continue.due(in_wave=False):
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
        return self._deployments.in_flight_runs(self._state)

    def _require_request(self) -> TrainRequest:
        assert self._request is not None, "run() fails at once when the request is invalid"
        return self._request
