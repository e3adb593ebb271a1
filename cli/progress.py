"""`watch` (and `deploy --wait`): follow one run until it closes.

A person watching a rollout wants each step once, in order, and the task counts live: every poll
prints only what changed since the last one (the run's stage timeline and decisions from the
`status` query, ECS events and counts from the wait's heartbeat, read in `cli.runs`). On a
terminal the counts are a progress bar redrawn in place; otherwise (a CI log, a pipe) every
change is a plain line, so the log reads the same as the terminal did.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from cli.errors import CliError, exit_code
from cli.format import (
    attempt_text,
    bake_text,
    deadline_text,
    decision_commands,
    decision_text,
    one_line,
    result_line,
    seconds_text,
    step_name,
    step_text,
)
from cli.runs import describe, final_result, live_progress, query_status, run_handle
from ecs_canary.models import (
    Decision,
    DecisionAttempt,
    DeploymentResult,
    DeploymentStatus,
    Stage,
    StageTiming,
    WaitProgress,
)
from ecs_canary.steps import StepState

POLL_SECONDS = 1.0
_BAR_WIDTH = 24
# Order of timeline lines at the same instant (a stable sort keeps the rest as listed).
_RANK_STEP_ENDED, _RANK_DECISION, _RANK_STEP_SKIPPED, _RANK_STAGE, _RANK_STEP_STARTED = range(5)
_STEP_ENDED = ("passed", "failed", "cancelled")


def _skipped_at(stages: list[StageTiming], decision: Decision | None) -> datetime:
    """When a step that never started was called off: at the decision, else when verification
    ended, else (not known yet) after everything else."""
    if decision is not None:
        return decision.at
    ends = [t.ended_at for t in stages if t.stage == Stage.VERIFICATION and t.ended_at]
    return ends[-1] if ends else datetime.max.replace(tzinfo=UTC)


class ProgressPrinter:
    """Prints what changed since the last poll; nothing twice."""

    def __init__(
        self,
        workflow_id: str,
        out: TextIO,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.workflow_id = workflow_id
        self.out = out
        # What is left of the gate's time is computed at each poll, on this clock.
        self.clock = clock
        self.tty = out.isatty()
        self._printed: set[object] = set()
        self._events: set[str] = set()
        self._progress: str | None = None
        self._counts: tuple[int | None, int | None] | None = None
        self._gate_announced = False
        self._bake_announced = False
        self._bar_shown = False

    def line(self, text: str) -> None:
        if self._bar_shown:
            self.out.write("\r\033[K")
            self._bar_shown = False
        self.out.write(text + "\n")
        self.out.flush()

    def timeline(
        self,
        stages: list[StageTiming],
        attempts: list[DecisionAttempt],
        decision: Decision | None,
        steps: Sequence[StepState] = (),
    ) -> None:
        """Decision attempts, the decision, stage starts and ends and verification steps' starts
        and ends, in the run's time order. At the same instant a decision comes before the
        stage it ends, a step's start after the stage's start, a step's end before the decision
        it caused, and a step skipped by that decision after it."""
        items: list[tuple[datetime, int, str, object]] = []

        def add(at: datetime, rank: int, text: str, key: object = None) -> None:
            items.append((at, rank, text, (at, text) if key is None else key))

        for attempt in attempts:
            deciding = decision is not None and (attempt.action, attempt.by, attempt.at) == (
                decision.action,
                decision.by,
                decision.at,
            )
            if not deciding:
                add(attempt.at, _RANK_DECISION, f"decision attempt: {attempt_text(attempt)}")
        if decision is not None:
            add(decision.at, _RANK_DECISION, f"decision: {decision_text(decision)}")
        for timing in stages:
            add(timing.started_at, _RANK_STAGE, f"stage {timing.stage.value} started")
            if timing.ended_at is not None:
                took = (timing.ended_at - timing.started_at).total_seconds()
                add(
                    timing.ended_at,
                    _RANK_STAGE,
                    f"stage {timing.stage.value} done ({seconds_text(took)})",
                )
        for step in steps:
            # Keyed by their text: a step starts once and ends once (names are unique).
            if step.started_at is not None:
                text = f"{step_name(step)} started"
                add(step.started_at, _RANK_STEP_STARTED, text, ("step", text))
            if step.state in _STEP_ENDED:
                ended = step.ended_at or _skipped_at(stages, decision)
                rank = _RANK_STEP_ENDED if step.ended_at else _RANK_STEP_SKIPPED
                text = step_text(step)
                add(ended, rank, text, ("step", text))
        for _at, _rank, text, key in sorted(items, key=lambda i: (i[0], i[1])):
            if key not in self._printed:
                self._printed.add(key)
                self.line(text)

    def update(self, status: DeploymentStatus | None, live: WaitProgress | None) -> None:
        if status is not None:
            self.timeline(
                status.stages, status.attempts, status.decision, status.verification_steps
            )
            if status.bake_ends_at is not None and not self._bake_announced:
                self._bake_announced = True
                self.line(bake_text(status.bake_ends_at, self.clock()))
            if status.gate_open and not self._gate_announced:
                self._gate_announced = True
                self.line("gate open: waiting for approval" + self._deadline(status))
                for action in ("approve", "reject"):
                    self.line(f"  {action}: {decision_commands(self.workflow_id, action)[1]}")
        if live is not None:
            for event in live.recent_events:
                if event not in self._events:
                    self._events.add(event)
                    self.line(event)
            if live.last_progress and live.last_progress != self._progress:
                self._progress = live.last_progress
                if not self.tty:
                    self.line(live.last_progress)
            self.counts(live.running_count, live.desired_count, status)
        elif self.tty and status is not None and status.gate_open:
            self.bar_text("gate open" + self._deadline(status))
        elif self.tty and status is not None and status.bake_ends_at is not None:
            self.bar_text(bake_text(status.bake_ends_at, self.clock()))

    def _deadline(self, status: DeploymentStatus) -> str:
        """`, decide by 14:09:30 UTC (4m30s left)`: what is left, as of this poll."""
        deadline = status.gate_deadline
        return f", {deadline_text(deadline, self.clock())}" if deadline else ""

    def counts(
        self, running: int | None, desired: int | None, status: DeploymentStatus | None
    ) -> None:
        if running is None or desired is None:
            return
        stage = status.stage.value if status else ""
        if self.tty:
            filled = (
                _BAR_WIDTH if desired == 0 else round(_BAR_WIDTH * min(running, desired) / desired)
            )
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            self.bar_text(f"{stage} [{bar}] {running}/{desired} running")
        elif (running, desired) != self._counts:
            self.line(f"{stage}: {running}/{desired} running")
        self._counts = (running, desired)

    def bar_text(self, text: str) -> None:
        self.out.write("\r\033[K" + text)
        self.out.flush()
        self._bar_shown = True

    def finish(self, result: DeploymentResult | None, error: str | None) -> None:
        if result is not None:
            self.timeline(
                result.stages, result.attempts, result.decision, result.verification_steps
            )
            self.line(result_line(result))
        else:
            self.line(f"outcome: unknown ({error})")


async def follow(
    client: Client, workflow_id: str, run_id: str | None = None, out: TextIO | None = None
) -> int:
    """Print a run's progress until it closes; returns the exit code (reason on stderr)."""
    out = out or sys.stdout
    description = await describe(run_handle(client, workflow_id, run_id))
    handle = run_handle(client, workflow_id, description.run_id)
    printer = ProgressPrinter(workflow_id, out)
    printer.line(f"watching {workflow_id} (run {description.run_id})")
    query_failed = False
    while description.status == WorkflowExecutionStatus.RUNNING:
        status = None
        try:
            status = await query_status(handle)
            query_failed = False
        except RPCError as err:
            if not query_failed:
                printer.line(f"status query failed (is a worker running?): {one_line(err)}")
            query_failed = True
        printer.update(status, await live_progress(client, description))
        await asyncio.sleep(POLL_SECONDS)
        description = await describe(handle)
    result, error = await final_result(handle)
    printer.finish(result, error)
    code, reason = exit_code(result, error)
    if reason:
        raise CliError(reason, code)
    return code
