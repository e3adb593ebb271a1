"""What a run did since the last poll, as lines, each printed once: the story `watch` tells.

Both ways of following a run tell the same story (the plain lines of a CI log, and the lines a
terminal keeps above its live view), so it is worked out here, apart from how it is shown: the
run's stage timeline, decision attempts, the decision, verification steps and canary analysis
intervals from the `status` query (or the result), in the run's time order, and when the bake
ends and by when to decide once the gate opens, with the commands to do it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from cli.format import (
    attempt_text,
    bake_text,
    deadline_text,
    decision_commands,
    decision_text,
    seconds_text,
    step_name,
    step_text,
    watch_text,
)
from ecs_canary.analysis import AnalysisStatus
from ecs_canary.analysis_text import interval_verdict_text
from ecs_canary.models import (
    Decision,
    DecisionAttempt,
    DeploymentResult,
    DeploymentStatus,
    Stage,
    StageTiming,
)
from ecs_canary.steps import StepState
from ecs_canary.text import load_balancing_lines

# Order of timeline lines at the same instant (a stable sort keeps the rest as listed).
_RANK_STEP_ENDED, _RANK_DECISION, _RANK_STEP_SKIPPED, _RANK_STAGE, _RANK_STEP_STARTED = range(5)
_STEP_ENDED = ("passed", "failed", "cancelled")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _skipped_at(stages: list[StageTiming], decision: Decision | None) -> datetime:
    """When a step that never started was called off: at the decision, else when verification
    ended, else (not known yet) after everything else."""
    if decision is not None:
        return decision.at
    ends = [t.ended_at for t in stages if t.stage == Stage.VERIFICATION and t.ended_at]
    return ends[-1] if ends else datetime.max.replace(tzinfo=UTC)


class Timeline:
    """The lines not told yet; nothing twice."""

    def __init__(
        self,
        workflow_id: str,
        clock: Callable[[], datetime] = utc_now,
        run_id: str | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        # The run followed: the decision commands it prints name it (a decision is for one run).
        self.run_id = run_id
        # What is left of the gate's time (or the bake's) is computed when it is told, on this
        # clock.
        self.clock = clock
        self._told: set[object] = set()
        # The last wording told of each load-balancing line (targets, traffic, scaling): a
        # change is told, and so is a return to an earlier wording (the rule put back).
        self._load_balancing: dict[str, str] = {}
        self._gate_announced = False
        self._bake_announced = False
        self._watch_announced = False

    def since_last(
        self,
        stages: list[StageTiming],
        attempts: list[DecisionAttempt],
        decision: Decision | None,
        steps: Sequence[StepState] = (),
        analysis: AnalysisStatus | None = None,
    ) -> list[str]:
        """Decision attempts, the decision, stage starts and ends, verification steps' starts
        and ends and each judged analysis interval, in the run's time order. At the same
        instant a decision comes before the stage it ends, a step's start after the stage's
        start, a step's end (or an interval) before the decision it caused, and a step skipped
        by that decision after it."""
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
        if analysis is not None:
            for interval in analysis.intervals:
                planned = analysis.intervals_planned
                text = f"canary analysis {interval_verdict_text(interval, planned)}"
                add(interval.ended_at, _RANK_STEP_ENDED, text)
        lines = []
        for _at, _rank, text, key in sorted(items, key=lambda i: (i[0], i[1])):
            if key not in self._told:
                self._told.add(key)
                lines.append(text)
        return lines

    def of_status(self, status: DeploymentStatus) -> list[str]:
        """What a poll's `status` adds: the timeline, each new wording of the targets, traffic
        weights and auto scaling, then, once each, when the bake ends, that the gate is
        open, by when to decide and the commands that decide, and when the watch after the
        rollout ends."""
        lines = self.since_last(
            status.stages,
            status.attempts,
            status.decision,
            status.verification_steps,
            status.analysis,
        )
        for label, text in load_balancing_lines(status.targets, status.traffic, status.scaling):
            if self._load_balancing.get(label) != text:
                self._load_balancing[label] = text
                lines.append(f"{label.lower()}: {text}")
        if status.bake_ends_at is not None and not self._bake_announced:
            self._bake_announced = True
            lines.append(bake_text(status.bake_ends_at, self.clock()))
        if status.gate_open and not self._gate_announced:
            self._gate_announced = True
            deadline = status.gate_deadline
            by = f", {deadline_text(deadline, self.clock())}" if deadline else ""
            lines.append("gate open: waiting for approval" + by)
            signed = bool(status.signed_decisions_required)
            for action in ("approve", "reject"):
                command = decision_commands(
                    self.workflow_id, action, signed=signed, run_id=self.run_id
                )[1]
                lines.append(f"  {action}: {command}")
        if status.watch_ends_at is not None and not self._watch_announced:
            self._watch_announced = True
            lines.append(f"watching alarms {watch_text(status.watch_ends_at, self.clock())}")
        return lines

    def of_result(self, result: DeploymentResult) -> list[str]:
        """The rest of the timeline, as the run's result has it (the last poll may have missed
        its end)."""
        return self.since_last(
            result.stages, result.attempts, result.decision, result.verification_steps
        )
