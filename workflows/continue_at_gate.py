"""A deployment waiting for a person at its gate continues as new once its history is long, so
that no flood of signals makes it slow to read or ends it.

Anyone who may signal a run can send it decisions it refuses, without end, and each one is an
event in the run's history. A worker that does not hold the run (it was restarted, or the run
left its cache) replays the whole history before it answers `status`: about 1.5 s for 10,000
refused signals on 2 cores (README, "A flood of refused signals"). And Temporal terminates a
run whose history passes 51,200 events, with no cleanup: its canary would go on serving.

So at the gate, once the history reaches CONTINUE_AT_GATE_AFTER_EVENTS events, the run
continues as new at its next quiet moment: QUIET_SECONDS with no signal, no message
handler running (no decision being checked) and no notification on its way. Temporal refuses a
continuation while a signal is unhandled: it fails that workflow task, the next one carries
every signal since the last completed task, and the worker drops the run and replays its whole
history. Tried in the middle of a flood, each attempt failed and cost a replay of the whole
history while the signals piled up (a worker wedged so in the flood bench); so the run waits
for the flood to pause.

The quiet moment is one timer that each signal starts again from its own handler,
before anything else runs (`signal_arrived`); its firing starts no timer, it only marks the
moment quiet. A timer started again where an earlier one fired broke the replay: a worker that
takes a long history cold can be handed an Update later in the same workflow task than the
timer's firing, so the new timer came before the Update's acceptance, while a replay, which
takes both at once, runs the Update's handler first (Nondeterminism, "Update machine does not
handle this event: TimerStarted"). A signal's handler runs in the order the signals and Updates
came, in either case. The new run starts at the same open gate
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

import asyncio
from typing import Any, NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import CarriedGate
    from ecs_canary.models import DeploymentRequest
    from ecs_canary.strict import StrictModel
    from workflows.decisions import DecisionDesk
    from workflows.notifications import Notifier
    from workflows.payloads import continuation
    from workflows.run_part import RunContext
    from workflows.state import DeploymentState

# A deployment's history at its gate is a few hundred events at most (canary analysis with many
# intervals included); a flood of refused signals passes this. Replaying 2,000 events takes a
# fresh worker about 0.3 s.
CONTINUE_AT_GATE_AFTER_EVENTS = 2000
# A quiet moment: this long with no signal. A timer started and cancelled within one workflow
# task leaves no event, so signals that come together cost the history two timer events at most
# (10,000 refused signals made histories of 10,413-10,904 events in the flood bench); the
# run continues as new about this long after the flood stops.
QUIET_SECONDS = 0.2


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
    """What the earlier run carried over, when this run is its continuation: its last earlier
    run is the run before (workflows.payloads.continuation)."""
    return continuation(payload, DeploymentContinued, _last_earlier_run)


def _last_earlier_run(carried: DeploymentContinued) -> str | None:
    return carried.earlier_run_ids[-1] if carried.earlier_run_ids else None


class GateContinuation:
    """When the run at its open gate continues as new (`quiet_moment`), and how."""

    def __init__(self, run: RunContext, desk: DecisionDesk, notifier: Notifier) -> None:
        self._run, self._desk, self._notifier = run, desk, notifier
        # Set as the run continues as new: what is still running is left to end with it.
        self.continuing = False
        # True while the open gate waits (`quiet_moment`): only then does a signal start the timer.
        self._waiting = False
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._quiet = False

    async def quiet_moment(self) -> None:
        """Return at the first quiet moment once the history is long (the module docstring).
        Runs beside the open gate's wait, which cancels it when something else ends the wait.
        Starts no timer until the history is long: the history of a run that meets no flood is
        the same as without it."""
        self._waiting, self._quiet = True, False
        self._start_timer_again()  # a history grown long before the gate opened
        try:
            await workflow.wait_condition(lambda: self._quiet and self._settled())
        finally:
            self._waiting = False
            self._stop_timer()

    def signal_arrived(self) -> None:
        """A signal arrived: the quiet moment starts again. Called from the signal's
        handler before it awaits anything, so the timer's commands keep the signal's place
        among the run's messages (the module docstring)."""
        self._quiet = False
        self._start_timer_again()

    def _start_timer_again(self) -> None:
        self._stop_timer()
        if self._waiting and _history_length() >= CONTINUE_AT_GATE_AFTER_EVENTS:
            loop = asyncio.get_running_loop()
            self._quiet_timer = loop.call_later(QUIET_SECONDS, self._became_quiet)

    def _stop_timer(self) -> None:
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
            self._quiet_timer = None

    def _became_quiet(self) -> None:
        self._quiet_timer = None
        self._quiet = True

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
