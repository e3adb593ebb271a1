"""A release train's deployments as Temporal runs: each started as an abandoned child
`EcsCanaryDeployment`, steered by workflow id and run (from whichever run of the train is
current: a run that continued as new has no child handle), told its decision once that is in
the train's memo (workflows.train_sent), cancelled when the line stops, and known to have
ended from Temporal: the train takes no one's word for an outcome. A run of the train hears of
the close of each deployment it started from Temporal itself (a child's close, with its result
or its error, is recorded on the run that started it); how one started by an earlier run of the
train (continued as new in the middle of a wave, or handed over) ended, or how a cancelled one
ended (its result is in its memo), is read from Temporal (activities.train.ended_deployments):
one started by an earlier run is found among the train's children that Temporal lists as
closed, every second or few.

`TrainDeployments` keeps what the train knows of those runs; the rows people read are the
state's (workflows.train_state), which it records outcomes into.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    CancelledError,
    ChildWorkflowError,
    FailureError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ChildWorkflowHandle, ExternalWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.train import ended_deployments
    from ecs_canary import train as train_contract
    from ecs_canary.models import DeploymentResult, Outcome
    from ecs_canary.names import WORKFLOW_TYPE
    from ecs_canary.request import DeploymentRequest
    from ecs_canary.train import (
        TRAIN_APPROVAL_MEMO,
        TRAIN_DECISION_SIGNAL,
        DeploymentRun,
        DeploymentRunEnd,
        EndedDeploymentsInput,
        TrainDecision,
        TrainDeployment,
        TrainOutcome,
        TrainProgress,
        TrainWaveStatus,
    )
    from workflows.calls import together, train_reads_runs
    from workflows.failures import failure_reason
    from workflows.train_sent import SentRecord
    from workflows.train_state import IN_FLIGHT, TrainState, outcome_of


class TrainDeployments:
    """The runs the train started (from any of its runs), what each was told, which were
    cancelled, and which said they ended without the train having read how yet."""

    def __init__(self, carried: TrainProgress | None = None) -> None:
        # workflow id -> the task starting it now (this run of the train only), and when it
        # was asked for.
        self.starting: dict[str, asyncio.Task[None]] = {}
        self.asked_at: dict[str, datetime] = {}
        # workflow id -> the task waiting for its close, for each run this run of the train
        # started (Temporal records a child's close on the run that started it).
        self.closing: dict[str, asyncio.Task[None]] = {}
        self.run_ids: dict[str, str] = dict(carried.run_ids) if carried else {}
        self.told: dict[str, TrainDecision] = dict(carried.told) if carried else {}
        self.cancelled: set[str] = set(carried.cancelled) if carried else set()
        self.ended: set[str] = set(carried.ended) if carried else set()
        # How they ended, for the runs of `ended` whose close this run of the train saw with
        # the result or the error in it (not carried: a later run reads them, `read_ends`).
        self.closed: dict[str, DeploymentRunEnd] = {}
        # What the train sent, in its memo, where its deployments check it.
        self.sent = SentRecord()

    # --- Where each one stands ----------------------------------------------------------------

    def room_to_start(self) -> int:
        """How many more deployments may be started now (`STARTS_AT_ONCE`, a start the
        server is backing off aside: ecs_canary.train.room_to_start)."""
        return train_contract.room_to_start(self.asked_at.values(), workflow.now())

    def started(self, row: TrainDeployment) -> bool:
        """Its run is known (started by this run of the train or an earlier one)."""
        return row.workflow_id in self.run_ids and row.workflow_id not in self.starting

    def reported(self, row: TrainDeployment) -> bool:
        """Its run said it ended, and the train has not read the result yet."""
        return row.workflow_id in self.ended and self.started(row)

    def to_approve(self, row: TrainDeployment) -> bool:
        """A verified canary not told yet, once its start is recorded here (its report may
        come in the same workflow task as its start)."""
        verified = row.stage == "verified" and row.workflow_id not in self.told
        return verified and self.started(row)

    def to_stop(self, row: TrainDeployment) -> bool:
        """A running deployment the stopped line has not yet rejected or cancelled."""
        told = self.told.get(row.workflow_id)
        running = row.stage in IN_FLIGHT and self.started(row)
        return running and (
            told is None or (told.action == "approve" and row.workflow_id not in self.cancelled)
        )

    def to_cancel(self, state: TrainState, wave: TrainWaveStatus) -> list[TrainDeployment]:
        """The wave's deployments in flight whose run is known and not cancelled yet."""
        return [
            row
            for row in state.in_flight(wave)
            if self.started(row) and row.workflow_id not in self.cancelled
        ]

    def inherited(self, state: TrainState, wave: TrainWaveStatus) -> list[TrainDeployment]:
        """The wave's deployments in flight that an earlier run of the train started: this run
        hears of their close only by looking (`read_ends` with `wait=False`)."""
        return [
            row
            for row in state.in_flight(wave)
            if self.started(row) and row.workflow_id not in self.closing
        ]

    def hearing_of(self, state: TrainState, wave: TrainWaveStatus) -> int:
        """How many of the wave's deployments in flight this run of the train started: Temporal
        will record each one's close on this run (train_contract.HAND_OVER_AFTER_STARTS)."""
        closing = self.closing
        return sum(
            1
            for row in state.in_flight(wave)
            if row.workflow_id in closing and not closing[row.workflow_id].done()
        )

    def in_flight_runs(self, state: TrainState) -> dict[str, str]:
        """The deployments in flight, by workflow id: the run each one started."""
        return {
            row.workflow_id: self.run_ids[row.workflow_id]
            for wave in state.waves
            for row in state.in_flight(wave)
            if row.workflow_id in self.run_ids
        }

    # --- Steering them ------------------------------------------------------------------------

    def start(
        self,
        state: TrainState,
        row: TrainDeployment,
        request: DeploymentRequest,
        train: str,
        approved: TrainDecision | None,
    ) -> None:
        """Start one deployment of the train `train` (its name) as a child run, in a task of
        its own (`starting` until its run is known). `approved`: the train's approval, given
        up front in a wave no person decides (`approved` until it ends: its canary takes it
        once verified, and nothing is sent either way)."""
        memo = None
        if approved is not None:
            self.told[row.workflow_id] = approved
            row.stage = "approved"
            memo = {TRAIN_APPROVAL_MEMO: approved.model_dump(mode="json")}
        summary = f"{row.service} on {row.cluster} (train {train})"
        self.asked_at[row.workflow_id] = workflow.now()
        self.starting[row.workflow_id] = asyncio.ensure_future(
            self._start(state, row, request, summary, memo)
        )

    async def _start(
        self,
        state: TrainState,
        row: TrainDeployment,
        request: DeploymentRequest,
        summary: str,
        memo: dict[str, Any] | None,
    ) -> None:
        """It is abandoned when this run closes: the train continues as new with its
        deployments in flight, and a later run of the train steers them by workflow id and
        reads how each ended (`read_ends`)."""
        try:
            handle = await workflow.start_child_workflow(
                WORKFLOW_TYPE,
                {**request.model_dump(mode="json"), "train": workflow.info().workflow_id},
                id=row.workflow_id,
                task_queue=workflow.info().task_queue,
                result_type=DeploymentResult,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=summary,
                memo=memo,
            )
        except WorkflowAlreadyStartedError:
            why = f"already being deployed by another run of {row.workflow_id}"
            state.ended(row, TrainOutcome.FAILED, why)
        else:
            assert handle.first_execution_run_id is not None, "a started child has its run"
            self.run_ids[row.workflow_id] = handle.first_execution_run_id
            self.closing[row.workflow_id] = asyncio.ensure_future(
                self._until_closed(row.workflow_id, handle)
            )
        finally:
            del self.starting[row.workflow_id], self.asked_at[row.workflow_id]

    async def _until_closed(self, workflow_id: str, handle: ChildWorkflowHandle[Any, Any]) -> None:
        """Mark the run ended once Temporal records its close on this run of the train (it
        started it), with what the close carries: the run's result, or its error and the
        result in the error's details. A cancelled run's result is in its memo only, so
        `read_ends` reads that one from Temporal. Never cancelled: a cancelled wait for a
        child would ask Temporal to cancel the child."""
        try:
            result = await handle
        except ChildWorkflowError as err:
            if not isinstance(err.cause, CancelledError):
                self.closed[workflow_id] = DeploymentRunEnd.failed(workflow_id, err.cause)
        except FailureError:  # no end to read here: `read_ends` asks Temporal
            pass
        else:
            self.closed[workflow_id] = DeploymentRunEnd(workflow_id=workflow_id, result=result)
        self.ended.add(workflow_id)

    async def tell(self, rows: list[TrainDeployment], decision: TrainDecision) -> None:
        """Send `decision` to each of `rows`, once it is in the memo where each checks it
        (workflows.train_sent)."""
        if not rows:
            return
        for row in rows:
            self.told[row.workflow_id] = decision
            if decision.action == "approve":
                row.stage = "promoting"
        runs = {row.workflow_id: self.run_ids[row.workflow_id] for row in rows}
        self.sent.decisions({workflow_id: (run, decision) for workflow_id, run in runs.items()})
        await together(*(self._send(row, decision) for row in rows))

    async def _send(self, row: TrainDeployment, decision: TrainDecision) -> None:
        try:
            await self._run_of(row).signal(TRAIN_DECISION_SIGNAL, decision)
        except FailureError as err:  # it closed before the signal reached it
            workflow.logger.info(f"{row.workflow_id} took no decision: {failure_reason(err)[1]}")

    async def cancel(self, row: TrainDeployment) -> None:
        """Cancel a deployment's run: it cleans up as it does alone (an approved one rolls
        back)."""
        self.cancelled.add(row.workflow_id)
        try:
            await self._run_of(row).cancel()
        except FailureError as err:  # it closed meanwhile: its result says how
            workflow.logger.info(f"{row.workflow_id} was not cancelled: {failure_reason(err)[1]}")

    def _run_of(self, row: TrainDeployment) -> ExternalWorkflowHandle[Any]:
        """The deployment's run this train started, by its workflow id and run."""
        return workflow.get_external_workflow_handle(
            row.workflow_id, run_id=self.run_ids[row.workflow_id]
        )

    # --- How they ended -----------------------------------------------------------------------

    async def read_ends(
        self,
        state: TrainState,
        rows: list[TrainDeployment],
        *,
        wait: bool = True,
        closed_since: datetime | None = None,
    ) -> int:
        """Record in `state` how the runs of `rows` ended: from their close where this run of
        the train saw it, else read from Temporal (`wait`: each said it is ending;
        `closed_since`: the runs Temporal lists as closed since then, for runs started after
        it); a run still running is left in flight. How many ended."""
        ends: list[DeploymentRunEnd] = []
        runs: list[DeploymentRun] = []
        for workflow_id in (row.workflow_id for row in rows if self.started(row)):
            end = self.closed.pop(workflow_id, None)
            if end is not None:
                ends.append(end)
                continue
            runs.append(DeploymentRun(workflow_id=workflow_id, run_id=self.run_ids[workflow_id]))
        if runs:
            ends += await workflow.execute_activity(
                ended_deployments,
                EndedDeploymentsInput(runs=runs, wait=wait, closed_since=closed_since),
                **train_reads_runs(f"Read how {len(runs)} deployment(s) ended"),
            )
        for end in ends:
            row = state.row(end.workflow_id)
            assert row is not None, "the train asked about its own deployments only"
            self.ended.discard(end.workflow_id)
            self.sent.forget(end.workflow_id)
            if end.result is not None and end.result.outcome == Outcome.SUCCEEDED:
                state.succeeded(row, end.result)
            else:
                state.ended(row, *self._outcome(state, row, end))
        return len(ends)

    def _outcome(
        self, state: TrainState, row: TrainDeployment, end: DeploymentRunEnd
    ) -> tuple[TrainOutcome, str]:
        """How a deployment that did not succeed ended, in the train's words."""
        result = end.result
        if end.cancelled or (result is not None and result.outcome == Outcome.CANCELLED):
            why = state.stop_reason or "its run was cancelled"
            if self._was_rolling_out(row, result):
                return TrainOutcome.ROLLED_BACK, f"cancelled while rolling out ({why})"
            return TrainOutcome.REJECTED, f"cancelled ({why})"
        if result is None:
            return TrainOutcome.FAILED, end.failure or "its run ended without a result"
        why = result.reason or "no reason"
        return outcome_of(result), f"{end.failure_type}: {why}" if end.failure_type else why

    def _was_rolling_out(self, row: TrainDeployment, result: DeploymentResult | None) -> bool:
        """Whether a cancelled deployment was past its canary: approved by a decision the train
        sent it, or, approved up front, with its own gate approved (its result, from its
        memo: workflows.train_member)."""
        told = self.told.get(row.workflow_id)
        if told is None or told.action != "approve":
            return False
        if row.stage != "approved":
            return True
        decision = result.decision if result is not None else None
        return decision is not None and decision.action == "approve"
