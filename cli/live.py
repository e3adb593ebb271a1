"""`watch` on a terminal: the run as one view, redrawn in place with rich, under its story.

Someone following a rollout on a terminal wants where it stands at a glance (the stage, tasks
running out of desired, each verification step, what time the gate has left) rather than a
scroll of counts. The view is rebuilt at each poll from the latest `status` query and wait
heartbeat and rendered with the client's clock: the workflow reports instants, and what is
left of them is only true when it is drawn. What happened (stages, steps, decisions, the gate
opening with the commands that decide it) is still printed above the view, once each, so the
scrollback tells the story that plain lines tell; when the run ends the last render stays,
followed by the outcome line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from cli.format import (
    decision_text,
    gate_text,
    hold_rows,
    one_line,
    outcome_line,
    plural,
    seconds_text,
    status_approvals,
    step_name,
    task_counts,
)
from cli.timeline import Timeline, utc_now
from ecs_canary.models import (
    DeploymentResult,
    DeploymentStatus,
    Outcome,
    Stage,
    StageTiming,
    WaitProgress,
)
from ecs_canary.steps import StepState
from ecs_canary.text import duration_text, load_balancing_lines

# The last few ECS service events: enough to see what ECS is doing, few enough to keep the view
# (which must fit on the screen to be redrawn in place) short.
SHOWN_EVENTS = 3
_BAR_WIDTH = 40
# As wide as the widest label, so that the values do not move sideways as rows come and go.
_LABEL_WIDTH = len("not notified")
_STEP_STYLES = {
    "pending": "dim",
    "running": "yellow",
    "passed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}
_OUTCOME_STYLES = {Outcome.SUCCEEDED: "bold green", Outcome.REJECTED: "bold yellow"}


def terminal_console(out: TextIO) -> Console | None:
    """A console that redraws in place on `out`, or None where plain lines belong.

    `out` must be a terminal, as `isatty` says (as before rich: FORCE_COLOR and the like must
    not turn a CI log into redraws), and one that can move its cursor: on TERM=dumb (or with
    TTY_INTERACTIVE=0) rich would show nothing of a live view until the end."""
    if not out.isatty():
        return None
    console = Console(file=out, force_terminal=True, highlight=False)
    return console if console.is_interactive else None


def _elapsed(since: datetime, now: datetime) -> str:
    """`45s`: whole seconds, so that a redraw each second reads as a clock."""
    return duration_text(max(0, math.floor((now - since).total_seconds())))


def _stage_text(status: DeploymentStatus, now: datetime) -> Text:
    """`verification   canary_deploy 3.3s → verification 45s`: the stage, then every stage so
    far and how long it took (or, for the current one, has taken until now)."""
    text = Text()
    text.append(status.stage.value, "bold")
    if status.outcome is not None:
        text.append(f" ({status.outcome.value})", _OUTCOME_STYLES.get(status.outcome, "bold red"))
    for index, timing in enumerate(status.stages):
        text.append("   " if index == 0 else " → ", style="dim")
        text.append_text(_stage_timing(timing, now))
    return text


def _stage_timing(timing: StageTiming, now: datetime) -> Text:
    if timing.ended_at is None:
        return Text(f"{timing.stage.value} {_elapsed(timing.started_at, now)}", style="cyan")
    took = seconds_text((timing.ended_at - timing.started_at).total_seconds())
    return Text(f"{timing.stage.value} {took}", style="dim")


def _tasks_bar(running: int, desired: int) -> Table:
    """A bar of running out of desired tasks (full when none are desired), and the numbers."""
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=desired, completed=min(running, desired), width=_BAR_WIDTH),
        f"{running}/{desired} running",
    )
    return bar


def _steps_table(steps: list[StepState], now: datetime) -> Table:
    """One row a step: its name, its state, and its summary (how long it has run, while it
    runs). Cut to one line each: the full summary is in the line printed when it ended."""
    table = Table.grid(padding=(0, 2), expand=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for step in steps:
        detail = one_line(step.summary) if step.summary else ""
        if step.state == "running" and step.started_at is not None and not detail:
            detail = f"for {_elapsed(step.started_at, now)}"
        table.add_row(step_name(step), Text(step.state, _STEP_STYLES[step.state]), detail)
    return table


def _clipped(text: str, style: str = "") -> Text:
    """One line, cut with an ellipsis: a view that keeps its height redraws cleanly in place."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def render_view(
    workflow_id: str,
    status: DeploymentStatus | None,
    live: WaitProgress | None,
    now: datetime,
) -> RenderableType:
    """The view of a run: what the last poll read, with times left worked out at `now`."""
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold", no_wrap=True, min_width=_LABEL_WIDTH)
    rows.add_column()
    header = Text(workflow_id, style="bold")
    if status is None:
        rows.add_row("stage", Text("not known yet (no answer to the status query)", "dim"))
    else:
        header.append(
            f"  {status.main_service} on {status.cluster} (canary {status.canary_service})"
        )
        rows.add_row("stage", _stage_text(status, now))
    running, desired = task_counts(status, live)
    if running is not None and desired is not None:
        rows.add_row("tasks", _tasks_bar(running, desired))
    if status is not None:
        for label, text in load_balancing_lines(
            status.targets, status.traffic, status.scaling, status.baseline
        ):
            rows.add_row(label.lower(), _clipped(text))
    if status is not None and status.verification_steps:
        rows.add_row("steps", _steps_table(status.verification_steps, now))
    if status is not None:
        for label, text in hold_rows(status, now):
            rows.add_row(label, Text(text, "bold red"))
        if status.stage == Stage.VERIFICATION or status.gate_open:
            gate = gate_text(status, now)
            rows.add_row("gate", Text(gate, "bold yellow" if status.gate_open else ""))
        if status.gate_open or status.approvals:
            rows.add_row("approvals", status_approvals(status))
        if status.decision is not None:
            rows.add_row("decision", decision_text(status.decision))
    events = live.recent_events if live is not None else status.recent_events if status else []
    for index, event in enumerate(events[-SHOWN_EVENTS:]):
        rows.add_row("ECS events" if index == 0 else "", _clipped(event, "dim"))
    failed = [n for n in status.notifications if n.state == "failed"] if status else []
    for index, notice in enumerate(failed):
        attempts = f" after {plural(notice.attempts, 'attempt')}" if notice.attempts else ""
        why = f": {one_line(notice.error)}" if notice.error else ""
        text = f"{notice.event} to {notice.target} failed{attempts}{why}"
        rows.add_row("not notified" if index == 0 else "", _clipped(text, "red"))
    return Group(header, rows)


def finished_status(result: DeploymentResult, last: DeploymentStatus | None) -> DeploymentStatus:
    """The run as its result tells it, for the last render: the last poll may be a second
    old. What only `status` knows (approvals needed, notifications) comes from that poll."""
    decision = result.decision
    return DeploymentStatus(
        stage=Stage.FINISHED,
        gate_open=False,
        cluster=result.cluster,
        main_service=result.main_service,
        canary_service=result.canary_service,
        task_definition_arn=result.task_definition_arn,
        running_count=None,
        desired_count=None,
        recent_events=[],
        decision=decision,
        approvals=decision.approvals if decision else last.approvals if last else [],
        min_approvals=last.min_approvals if last else 1,
        attempts=result.attempts,
        stages=result.stages,
        outcome=result.outcome,
        verification_steps=result.verification_steps,
        result=result,
        notifications=last.notifications if last else [],
    )


class LiveView:
    """The live view of one run on a terminal, with the story's lines printed above it."""

    def __init__(
        self,
        workflow_id: str,
        console: Console,
        clock: Callable[[], datetime] = utc_now,
        run_id: str | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.console = console
        self.clock = clock
        self.story = Timeline(workflow_id, clock, run_id)
        self._status: DeploymentStatus | None = None
        self._live: WaitProgress | None = None
        # Redrawn at each poll only (no refresh thread): the view changes when a poll reads
        # something, and its times left are worked out then. stdout and stderr are left alone:
        # an error must stay on stderr.
        self._display = Live(
            self._render(),
            console=console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._display.start(refresh=True)

    def _render(self) -> RenderableType:
        return render_view(self.workflow_id, self._status, self._live, self.clock())

    def line(self, text: str) -> None:
        """A line above the view, as it is (no markup), left to the terminal to wrap so that a
        printed command stays one line to copy."""
        self.console.print(Text(text), soft_wrap=True)

    def update(self, status: DeploymentStatus | None, live: WaitProgress | None) -> None:
        """A poll: the view redrawn with what it read, and the story's new lines printed above
        it. A failed query (no status) keeps the last status shown; the heartbeat is shown only
        while a wait runs."""
        told: list[str] = []
        if status is not None:
            told = self.story.of_status(status)
            self._status = status
        self._live = live
        self._display.update(self._render(), refresh=True)
        for text in told:
            self.line(text)

    def finish(self, result: DeploymentResult | None, error: str | None) -> None:
        """The run as its result tells it: the last render (which stays on the screen) under
        the rest of the story, then the outcome line."""
        told: list[str] = []
        if result is not None:
            told = self.story.of_result(result)
            self._status = finished_status(result, self._status)
        self._live = None
        self._display.update(self._render(), refresh=True)
        for text in told:
            self.line(text)
        self.close()
        self.line(outcome_line(result, error))

    def close(self) -> None:
        """Stops redrawing; the last render stays (also when watching is interrupted)."""
        self._display.stop()
