"""`watch` (and `deploy --wait`): follow one run until it closes.

A person watching a rollout wants each step once, in order, and the task counts live: every poll
tells only what changed since the last one (the run's stage timeline and decisions from the
`status` query, in `cli.timeline`; ECS events and counts from the wait's heartbeat, read in
`cli.runs`). On a terminal that can redraw in place the run is a live view (`cli.live`) under
the story's lines; otherwise (a CI log, a pipe) every change is a plain line, so the log reads
the same as the terminal's scrollback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TextIO

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from cli.errors import CliError, exit_code
from cli.format import one_line, outcome_line
from cli.runs import (
    continued_run,
    describe,
    final_result,
    live_progress,
    query_status,
    run_handle,
)
from cli.timeline import Timeline, utc_now
from ecs_canary.models import DeploymentResult, DeploymentStatus, WaitProgress

POLL_SECONDS = 1.0


class RunView(Protocol):
    """How `follow` shows a run: plain lines (`ProgressPrinter`) or the live view."""

    def line(self, text: str) -> None: ...

    def update(self, status: DeploymentStatus | None, live: WaitProgress | None) -> None: ...

    def finish(self, result: DeploymentResult | None, error: str | None) -> None: ...

    def close(self) -> None: ...


class ProgressPrinter:
    """Prints what changed since the last poll as plain lines; nothing twice."""

    def __init__(
        self,
        workflow_id: str,
        out: TextIO,
        clock: Callable[[], datetime] = utc_now,
        run_id: str | None = None,
    ) -> None:
        self.out = out
        self.story = Timeline(workflow_id, clock, run_id)
        self._events: set[str] = set()
        self._progress: str | None = None
        self._counts: tuple[int | None, int | None] | None = None

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def update(self, status: DeploymentStatus | None, live: WaitProgress | None) -> None:
        if status is not None:
            for text in self.story.of_status(status):
                self.line(text)
        if live is not None:
            for event in live.recent_events:
                if event not in self._events:
                    self._events.add(event)
                    self.line(event)
            if live.last_progress and live.last_progress != self._progress:
                self._progress = live.last_progress
                self.line(live.last_progress)
            self.counts(live.running_count, live.desired_count, status)

    def counts(
        self, running: int | None, desired: int | None, status: DeploymentStatus | None
    ) -> None:
        if running is None or desired is None or (running, desired) == self._counts:
            return
        stage = status.stage.value if status else ""
        self.line(f"{stage}: {running}/{desired} running")
        self._counts = (running, desired)

    def finish(self, result: DeploymentResult | None, error: str | None) -> None:
        if result is not None:
            for text in self.story.of_result(result):
                self.line(text)
        self.line(outcome_line(result, error))

    def close(self) -> None:
        """Nothing to stop: every line is written as it comes."""


def run_view(workflow_id: str, run_id: str, out: TextIO) -> RunView:
    """The live view on a terminal that redraws in place, plain lines anywhere else."""
    from cli.live import LiveView, terminal_console  # rich, for the commands that follow a run

    console = terminal_console(out)
    if console is None:
        return ProgressPrinter(workflow_id, out, run_id=run_id)
    return LiveView(workflow_id, console, run_id=run_id)


async def follow(
    client: Client, workflow_id: str, run_id: str | None = None, out: TextIO | None = None
) -> int:
    """Show a run's progress until it closes; returns the exit code (reason on stderr)."""
    out = out or sys.stdout
    description = await describe(run_handle(client, workflow_id, run_id))
    handle = run_handle(client, workflow_id, description.run_id)
    view = run_view(workflow_id, description.run_id, out)
    try:
        view.line(f"watching {workflow_id} (run {description.run_id})")
        query_failed = False
        while description.status == WorkflowExecutionStatus.RUNNING:
            status = None
            try:
                status = await query_status(handle)
                query_failed = False
            except RPCError as err:
                if not query_failed:
                    view.line(f"status query failed (is a worker running?): {one_line(err)}")
                query_failed = True
            view.update(status, await live_progress(client, description))
            await asyncio.sleep(POLL_SECONDS)
            description = await describe(handle)
            if (continued := await continued_run(client, description)) is not None:
                view.line(
                    f"run {description.run_id} continued as new at its gate (a long history): "
                    f"watching run {continued.run_id}"
                )
                description, handle = continued, run_handle(client, workflow_id, continued.run_id)
        result, error = await final_result(handle)
        view.finish(result, error)
    finally:
        view.close()
    code, reason = exit_code(result, error)
    if reason:
        raise CliError(reason, code)
    return code
