"""The train measure's own workflow tasks and its deployments' starts (bench/train_timeline.py):
read from every run of the train, the tasks matched with the slow `status` answers that waited
for them, the starts summed up wave by wave."""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from bench.train_timeline import child_starts, starts_summary, tasks_summary, train_tasks

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
        [0.0, 0.1, 0.0],
        [5.0, 5.5, 0.0],
        [5.6, 6.6, 0.0],
        [10.0, 10.2, 0.0],
    ]
    # Asked at 5.2 s, answered after 1.5 s: two tasks completed meanwhile.
    summary = tasks_summary(tasks, [[5.2, 1.5], [0.05, 0.02]])
    assert "4, started to completed median 350 ms, max 1.00 s" in summary
    assert "waited: 2 at 5 s, 0 at 0 s" in summary


def test_a_task_that_waited_for_a_worker_is_timed_from_scheduled_to_started():
    run = [
        _event(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 1.0),
        _event(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, 5.75),
        _event(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 5.8),
        *_task(6.0, 6.5, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    ]

    tasks = train_tasks([run], BEGAN)

    assert [[round(t, 3) for t in task] for task in tasks] == [[5.75, 5.8, 4.75], [6.0, 6.5, 0.0]]
    assert "scheduled to started 99th percentile 4.75 s, max 4.75 s" in tasks_summary(tasks, [])


def test_no_task_read_is_said_so():
    assert tasks_summary([], [[1.0, 0.5]]) == "the train's workflow tasks: none read"


def _start(event_id: int, asked: float) -> HistoryEvent:
    event = _event(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED, asked)
    event.event_id = event_id
    return event


def _started(initiated: int, at: float) -> HistoryEvent:
    event = _event(EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED, at)
    event.child_workflow_execution_started_event_attributes.initiated_event_id = initiated
    return event


def test_each_start_is_timed_from_its_command_to_its_child_started_and_summed_per_wave():
    # Wave one (2 deployments) in the first run, wave two (3) across both; a start whose
    # child-started event is in no history read (the run continued as new first) is left out.
    first_run = [
        _start(5, 0.5),
        _start(6, 0.5),
        _started(6, 0.6),
        _started(5, 0.8),
        _start(20, 10.0),
        _start(21, 10.0),
        _started(20, 13.0),
    ]
    second_run = [_start(3, 20.0), _started(3, 20.5)]

    starts = child_starts([first_run, second_run], BEGAN)

    assert [[round(t, 3) for t in start] for start in starts] == [
        [0.5, 0.1],
        [0.5, 0.3],
        [10.0, 3.0],
        [20.0, 0.5],
    ]
    assert starts_summary(starts, [2, 3]) == [
        "wave 1 starts: asked 0.5-0.5 s, took median 0.20 s, 90th percentile 0.30 s, "
        "max 0.30 s, 0 over 2 s",
        "wave 2 starts: asked 10.0-20.0 s, took median 1.75 s, 90th percentile 3.00 s, "
        "max 3.00 s, 1 over 2 s",
    ]
