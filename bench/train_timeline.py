"""Where a release train's wall time goes (issue 25's train measure): for each wave, when its
deployments started and ended, how long each phase of a deployment took (from its history's
event times), how many ECS calls each second of the train carried (the emulator's count), and
how long the train's own workflow tasks and its deployments' starts took (from its history).

A deployment's phases, in the order its history has them:
- `queued`: started by the train until a worker began its first workflow task;
- `to_canary_wait`: its first look, task definition and canary's CreateService (local
  activities, each waiting its turn at the ECS budget), until its canary's wait is scheduled;
- `canary_wait`, `delete_wait`, `rolling_wait`: the three waits (activity tasks), scheduled to
  completed;
- `to_delete_wait`: the canary's DeleteService (and the rollback target's check, if it is still
  running: it starts beside the canary's wait);
- `to_rolling_wait`: the main service's UpdateService;
- `to_end`: from the rolling wait until the run closed.
"""

from __future__ import annotations

import statistics
from typing import Any

from temporalio.api.enums.v1 import EventType

from bench.deployments import percentile

PHASES = (
    "queued",
    "to_canary_wait",
    "canary_wait",
    "to_delete_wait",
    "delete_wait",
    "to_rolling_wait",
    "rolling_wait",
    "to_end",
)
# A wait's scheduling and its end.
_WAIT_MARKS = (
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED,
)


def _seconds(event: Any) -> float:
    return float(event.event_time.ToMicroseconds() / 1e6)


def marks(events: list[Any]) -> list[float] | None:
    """A deployment's phase boundaries (epoch seconds): its start, its first workflow task's
    start, each wait's scheduling and end, and its close; None for a history without its
    three waits (a deployment that did not run through)."""
    first_task = next(
        (e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED), None
    )
    waits = [_seconds(event) for event in events if event.event_type in _WAIT_MARKS]
    if first_task is None or len(waits) != 6:
        return None
    return [_seconds(events[0]), _seconds(first_task), *waits, _seconds(events[-1])]


def wave_timeline(
    histories: list[list[Any]], sizes: list[int], began: float
) -> list[dict[str, Any]]:
    """Per wave: its first and last start, its first and last end (seconds from `began`), and
    each phase's median and maximum (seconds) over its deployments."""
    waves: list[dict[str, Any]] = []
    start = 0
    for size in sizes:
        found = [m for m in map(marks, histories[start : start + size]) if m is not None]
        start += size
        if not found:
            waves.append({"deployments": 0})
            continue
        phases = {phase: [m[i + 1] - m[i] for m in found] for i, phase in enumerate(PHASES)}
        waves.append(
            {
                "deployments": len(found),
                "first_started": min(m[0] for m in found) - began,
                "last_started": max(m[0] for m in found) - began,
                "first_ended": min(m[-1] for m in found) - began,
                "last_ended": max(m[-1] for m in found) - began,
                "phases": {
                    phase: {"median": statistics.median(values), "max": max(values)}
                    for phase, values in phases.items()
                },
            }
        )
    return waves


_TASK_ENDS = (
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
)


def train_tasks(runs: list[list[Any]], began: float) -> list[list[float]]:
    """The train's own workflow tasks, every run of it, as [started, ended, waited] (seconds
    from `began`, and from scheduled to started): Temporal holds a `status` query while the
    train has one in flight, and one scheduled that no worker has taken yet."""
    tasks = []
    for events in runs:
        scheduled: float | None = None
        started: float | None = None
        for event in events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled = _seconds(event) - began
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started = _seconds(event) - began
            elif event.event_type in _TASK_ENDS and started is not None:
                waited = started - scheduled if scheduled is not None else 0.0
                tasks.append([started, _seconds(event) - began, waited])
                scheduled = started = None
    return tasks


def tasks_summary(tasks: list[list[float]], status: list[list[float]]) -> str:
    """How long the train's workflow tasks waited for a worker (scheduled to started) and took
    (started to completed, the dev server's completion included), and how many of them each
    of the slowest `status` answers waited for (completed while it waited)."""
    if not tasks:
        return "the train's workflow tasks: none read"
    took = [ended - started for started, ended, _ in tasks]
    waited = [wait for _, _, wait in tasks]
    slowest = sorted(status, key=lambda sample: sample[1], reverse=True)[:5]
    completed = ", ".join(
        f"{sum(1 for _, ended, _ in tasks if at <= ended <= at + latency)} at {at:.0f} s"
        for at, latency in slowest
    )
    return (
        f"the train's workflow tasks: {len(tasks)}, started to completed median "
        f"{statistics.median(took) * 1000:.0f} ms, max {max(took):.2f} s; scheduled to started "
        f"99th percentile {percentile(waited, 99):.2f} s, max {max(waited):.2f} s; "
        f"tasks completed while the slowest status answers waited: {completed}"
    )


def child_starts(runs: list[list[Any]], began: float) -> list[list[float]]:
    """Each deployment's start, every run of the train, as [asked, took] (seconds from
    `began` when the train's command asked for it, and until Temporal recorded the child
    started on the train). Temporal runs each start as a background task that must take the
    train's lock; one that waits for it too long is retried after a growing backoff."""
    starts = []
    for events in runs:
        asked: dict[int, float] = {}
        for event in events:
            if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                asked[event.event_id] = _seconds(event) - began
            elif event.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                at = asked.get(
                    event.child_workflow_execution_started_event_attributes.initiated_event_id
                )
                if at is not None:
                    starts.append([at, _seconds(event) - began - at])
    return sorted(starts)


def starts_summary(starts: list[list[float]], sizes: list[int]) -> list[str]:
    """Per wave (its starts are asked for after the last wave's, so in order of asking they
    come wave by wave): when its starts were asked for, and how long they took."""
    lines, first = [], 0
    for number, size in enumerate(sizes, 1):
        wave = starts[first : first + size]
        first += size
        if not wave:
            continue
        took = [t for _, t in wave]
        lines.append(
            f"wave {number} starts: asked {wave[0][0]:.1f}-{wave[-1][0]:.1f} s, took median "
            f"{statistics.median(took):.2f} s, 90th percentile "
            f"{percentile(took, 90):.2f} s, max {max(took):.2f} s, "
            f"{sum(1 for t in took if t > 2.0)} over 2 s"
        )
    return lines


def calls_timeline(per_second: list[list[Any]], began: float) -> list[list[Any]]:
    """The emulator's calls per wall-clock second, as [seconds from `began`, {operation: n}]."""
    return [[second - int(began), counts] for second, counts in per_second]


def summary(
    waves: list[dict[str, Any]], calls: list[list[Any]], status: list[list[float]]
) -> list[str]:
    """Lines saying, per wave, when it ran, how busy the budget was meanwhile and which phase
    took longest, then when the train's `status` answered slowest (`status`: [seconds from the
    start when asked, seconds it took])."""
    by_second = {second: sum(counts.values()) for second, counts in calls}
    lines = []
    for number, wave in enumerate(waves, 1):
        if not wave["deployments"]:
            continue
        first, last = int(wave["first_started"]), int(wave["last_ended"])
        busy = [by_second.get(second, 0) for second in range(first, last + 1)]
        phases = ", ".join(
            f"{phase} {p['median']:.1f}/{p['max']:.1f}" for phase, p in wave["phases"].items()
        )
        lines.append(
            f"wave {number}: started {wave['first_started']:.1f}-{wave['last_started']:.1f} s, "
            f"ended {wave['first_ended']:.1f}-{wave['last_ended']:.1f} s, "
            f"{sum(busy)} calls ({sum(busy) / max(1, len(busy)):.0f}/s); "
            f"phases median/max s: {phases}"
        )
    slowest = sorted(status, key=lambda sample: sample[1], reverse=True)[:5]
    asked = ", ".join(f"{latency:.2f} s at {at:.0f} s" for at, latency in slowest)
    lines.append(f"slowest status answers: {asked}")
    return lines
