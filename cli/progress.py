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
from datetime import datetime
from typing import TextIO

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from cli.errors import CliError, exit_code
from cli.format import (
    attempt_text,
    decision_commands,
    decision_text,
    one_line,
    result_line,
    seconds_text,
)
from cli.runs import describe, final_result, live_progress, query_status, run_handle
from ecs_canary.models import (
    Decision,
    DecisionAttempt,
    DeploymentResult,
    DeploymentStatus,
    StageTiming,
    WaitProgress,
)

POLL_SECONDS = 1.0
_BAR_WIDTH = 24


class ProgressPrinter:
    """Prints what changed since the last poll; nothing twice."""

    def __init__(self, workflow_id: str, out: TextIO) -> None:
        self.workflow_id = workflow_id
        self.out = out
        self.tty = out.isatty()
        self._printed: set[tuple[datetime, str]] = set()
        self._events: set[str] = set()
        self._progress: str | None = None
        self._counts: tuple[int | None, int | None] | None = None
        self._gate_announced = False
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
    ) -> None:
        """Decision attempts, the decision, stage starts and ends, in the run's time order (a
        decision ends the verification stage at the same instant: it comes first)."""
        items: list[tuple[datetime, str]] = []
        for attempt in attempts:
            deciding = decision is not None and (attempt.action, attempt.by, attempt.at) == (
                decision.action,
                decision.by,
                decision.at,
            )
            if not deciding:
                items.append((attempt.at, f"decision attempt: {attempt_text(attempt)}"))
        if decision is not None:
            items.append((decision.at, f"decision: {decision_text(decision)}"))
        for timing in stages:
            items.append((timing.started_at, f"stage {timing.stage.value} started"))
            if timing.ended_at is not None:
                took = (timing.ended_at - timing.started_at).total_seconds()
                items.append(
                    (timing.ended_at, f"stage {timing.stage.value} done ({seconds_text(took)})")
                )
        for item in sorted(items, key=lambda i: i[0]):
            if item not in self._printed:
                self._printed.add(item)
                self.line(item[1])

    def update(self, status: DeploymentStatus | None, live: WaitProgress | None) -> None:
        if status is not None:
            self.timeline(status.stages, status.attempts, status.decision)
            if status.gate_open and not self._gate_announced:
                self._gate_announced = True
                self.line(
                    f"gate open: waiting for approval "
                    f"({seconds_text(status.gate_seconds_left)} left)"
                )
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
            self.bar_text(f"gate open, {seconds_text(status.gate_seconds_left)} left")

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
            self.timeline(result.stages, result.attempts, result.decision)
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
