"""The train measure's own workflow tasks (bench/train_timeline.py): read from every run of the
train, and matched with the slow `status` answers that waited for them."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench.train_timeline import tasks_summary, train_tasks

BEGAN = 1_000.0


def _event(kind: EventType.ValueType, seconds: float) -> HistoryEvent:
    event = HistoryEvent(event_type=kind)
    event.event_time.FromMicroseconds(int((BEGAN + seconds) * 1e6))
    return event


def _task(started: float, ended: float, end: EventType.ValueType) -> list[HistoryEvent]:
    return [
        _event(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, started),
        _event(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, started),
        _event(end, ended),
    ]


def test_every_run_s_tasks_are_read_and_counted_against_the_slow_answers():
    completed = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    first_run = [
        _event(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 0.0),
        *_task(0.0, 0.1, completed),
        *_task(5.0, 5.5, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED),
        _event(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, 5.6),
        *_task(5.6, 6.6, completed),
    ]
    second_run = [*_task(10.0, 10.2, EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)]

    tasks = train_tasks([first_run, second_run], BEGAN)

    assert [[round(t, 3) for t in task] for task in tasks] == [
        [0.0, 0.1],
        [5.0, 5.5],
        [5.6, 6.6],
        [10.0, 10.2],
    ]
    # Asked at 5.2 s, answered after 1.5 s: two tasks completed meanwhile.
    summary = tasks_summary(tasks, [[5.2, 1.5], [0.05, 0.02]])
    assert "4, started to completed median 350 ms, max 1.00 s" in summary
    assert "waited: 2 at 5 s, 0 at 0 s" in summary


def test_no_task_read_is_said_so():
    assert tasks_summary([], [[1.0, 0.5]]) == "the train's workflow tasks: none read"
