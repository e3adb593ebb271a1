"""A deployment waiting for a person at its gate continues as new once its history is long, so
that no flood of signals makes it slow to read or ends it.

Anyone who may signal a run can send it decisions it refuses, without end, and each one is an
event in the run's history. A worker that does not hold the run (it was restarted, or the run
left its cache) replays the whole history before it answers `status`: about 1.5 s for 10,000
refused signals on 2 cores (README, "A flood of refused signals"). And Temporal terminates a
run whose history passes 51,200 events, with no cleanup: its canary would go on serving.

So at the gate, once the history reaches CONTINUE_AT_GATE_AFTER_EVENTS events, the run
continues as new at its next quiet moment: a timer of QUIET_SECONDS during which the history
grew by fewer than QUIET_EVENTS events (the timer's own included), with no message handler
running (no decision being checked) and no notification on its way. Temporal refuses a
continuation while a signal is unhandled: it fails that workflow task, the next one carries
every signal since the last completed task, and the worker drops the run and replays its
whole history. Tried in the middle of a flood, each attempt failed and cost a replay of the
whole history while the signals piled up (a worker wedged so in the flood bench); so the run
waits for the flood to pause. The new run starts at the same open gate
(`DeploymentContinued`): the request, the state (the stages so far, the canary, the traffic
and scaling it holds, the verification's results, the pause), the gate (its deadline,
approvals, policy and attempts) and the `jti` of every token used. A token signed for a run
it continued from still decides it: the same deployment. The run's memo and search attributes
go on as Temporal carries them; its alarm watch ends with the old run (the watch's heartbeat
finds the run closed) and the new run starts its own. A signal that slips in as the run
continues fails that attempt and loses nothing: the run takes it and waits for the next quiet
moment.

Only at a person's gate, which may stay open for days while anyone can signal it; everywhere
else a run moves on by itself. A release train's deployment never waits at one (its train
decides for it), so it never continues as new.
"""

from __future__ import annotations

from typing import Any, NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import CarriedGate
    from ecs_canary.models import DeploymentRequest
    from ecs_canary.strict import StrictModel
    from workflows.decisions import DecisionDesk
    from workflows.notifications import Notifier
    from workflows.run_part import RunContext
    from workflows.state import DeploymentState

# A deployment's history at its gate is a few hundred events at most (canary analysis with many
# intervals included); a flood of refused signals passes this. Replaying 2,000 events takes a
# fresh worker about 0.3 s.
CONTINUE_AT_GATE_AFTER_EVENTS = 2000
# A quiet moment: this long with the history growing by fewer than QUIET_EVENTS events. The
# timer itself adds 5 (the task that starts it completing, the timer started and fired, the
# next task scheduled and started), a signal about 4; a flood adds hundreds. A timer every
# QUIET_SECONDS while a flood lasts costs its history little; the run continues as new within
# about twice that once the flood stops.
QUIET_SECONDS = 0.2
QUIET_EVENTS = 20


class DeploymentContinued(StrictModel):
    """The input of a deployment's run that continues an earlier one at its open gate: taken
    only by a run Temporal started as such a continuation (a client cannot start one)."""

    request: DeploymentRequest
    state: DeploymentState
    gate: CarriedGate
    # Every run of this deployment before this one, oldest first.
    earlier_run_ids: list[str]
    used_token_ids: list[str]


def continued(payload: Any) -> DeploymentContinued | None:
    """What the earlier run carried over, when Temporal started this run as its continuation."""
    if workflow.info().continued_run_id is None:
        return None
    return DeploymentContinued.model_validate(payload)


class GateContinuation:
    """When the run at its open gate continues as new (`quiet_moment`), and how."""

    def __init__(self, run: RunContext, desk: DecisionDesk, notifier: Notifier) -> None:
        self._run, self._desk, self._notifier = run, desk, notifier
        # Set as the run continues as new: what is still running is left to end with it.
        self.continuing = False

    async def quiet_moment(self) -> None:
        """Return at the first quiet moment once the history is long (the module docstring).
        Runs beside the open gate's wait, which cancels it when something else ends the wait.
        Takes no command until the history is long: the history of a run that meets no flood
        is the same as without it."""
        while True:
            # No timer while a decision is checked or a notification is on its way (a webhook
            # that retries for minutes): only a flood's signals are waited out by timers.
            await workflow.wait_condition(
                lambda: _history_length() >= CONTINUE_AT_GATE_AFTER_EVENTS and self._settled()
            )
            before = _history_length()
            await workflow.sleep(QUIET_SECONDS, summary="Wait for the signals to pause")
            if _history_length() - before < QUIET_EVENTS and self._settled():
                return

    def _settled(self) -> bool:
        """No message handler running (no decision being checked), no delivery on its way."""
        return workflow.all_handlers_finished() and self._notifier.idle

    def continue_as_new(self) -> NoReturn:
        """Continue as new at this open gate, carrying everything the run knows."""
        run, info = self._run, workflow.info()
        carried = DeploymentContinued(
            request=run.request,
            state=run.state,
            gate=run.gate.carried(),
            earlier_run_ids=[*self._desk.earlier_run_ids, info.run_id],
            used_token_ids=self._desk.used_token_ids,
        )
        workflow.logger.info(
            f"Continuing as new at the gate: the history has {info.get_current_history_length()} "
            "events",
            extra=run.log_context(),
        )
        self.continuing = True
        # Dumped now: nothing the run does on its way out changes what it carries.
        workflow.continue_as_new(carried.model_dump(mode="json"))


def _history_length() -> int:
    return workflow.info().get_current_history_length()
