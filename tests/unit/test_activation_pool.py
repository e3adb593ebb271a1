"""The worker's activation threads (ecs_canary.activation_pool): queued activations run queries
first, then release trains', then the rest in arrival order, and the pool still stops and
reports failures as a plain thread pool does."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.bridge.proto.workflow_activation import WorkflowActivation

from ecs_canary.activation_pool import (
    OTHER,
    QUERY_ONLY,
    TRAIN,
    ActivationPool,
    activation_priority,
)
from ecs_canary.names import TRAIN_WORKFLOW_TYPE, WORKFLOW_TYPE


@dataclass
class _Info:
    workflow_type: str


class _Run:
    """Stands for the SDK's running workflow: what the pool reads of it is `get_info()` and the
    bound `activate(activation)` it is handed."""

    def __init__(self, workflow_type: str, ran: list[str], name: str) -> None:
        self._info, self._ran, self.name = _Info(workflow_type), ran, name

    def get_info(self) -> _Info:
        return self._info

    def activate(self, activation: WorkflowActivation) -> str:
        self._ran.append(self.name)
        return self.name


def _activation(*jobs: str) -> WorkflowActivation:
    activation = WorkflowActivation(run_id="r")
    for job in jobs:
        added = activation.jobs.add()
        getattr(added, job).SetInParent()
    return activation


def test_priority_queries_then_trains_then_the_rest():
    ran: list[str] = []
    train, deployment = _Run(TRAIN_WORKFLOW_TYPE, ran, "t"), _Run(WORKFLOW_TYPE, ran, "d")
    assert activation_priority(deployment.activate, (_activation("query_workflow"),)) == QUERY_ONLY
    assert activation_priority(train.activate, (_activation("signal_workflow"),)) == TRAIN
    assert activation_priority(deployment.activate, (_activation("fire_timer"),)) == OTHER
    # A query beside other work is that work's: it waits its turn with it.
    both = _activation("signal_workflow", "query_workflow")
    assert activation_priority(deployment.activate, (both,)) == OTHER
    # Not an activation at all (nothing else is handed to the pool, but nothing breaks).
    assert activation_priority(print, ()) == OTHER


def test_queued_activations_run_waiters_first_then_in_arrival_order():
    ran: list[str] = []
    pool = ActivationPool(threads=1)
    busy, release = threading.Event(), threading.Event()

    def hold_the_thread() -> None:
        busy.set()
        release.wait(10)

    first = pool.submit(hold_the_thread)
    assert busy.wait(10)
    queued = [
        (_Run(WORKFLOW_TYPE, ran, "deployment-1"), "fire_timer"),
        (_Run(TRAIN_WORKFLOW_TYPE, ran, "train-step"), "resolve_child_workflow_execution"),
        (_Run(WORKFLOW_TYPE, ran, "deployment-2"), "signal_workflow"),
        (_Run(WORKFLOW_TYPE, ran, "status-query"), "query_workflow"),
        (_Run(WORKFLOW_TYPE, ran, "deployment-3"), "fire_timer"),
    ]
    futures = [pool.submit(run.activate, _activation(job)) for run, job in queued]
    release.set()
    first.result(10)
    assert [future.result(10) for future in futures] == [run.name for run, _ in queued]
    assert ran == ["status-query", "train-step", "deployment-1", "deployment-2", "deployment-3"]
    pool.shutdown(wait=True)


def test_a_failing_activation_fails_its_future_and_shutdown_runs_what_was_queued():
    pool = ActivationPool(threads=1)
    busy, release = threading.Event(), threading.Event()
    done: list[int] = []

    def hold_the_thread() -> None:
        busy.set()
        release.wait(10)

    def fail() -> Any:
        raise RuntimeError("the workflow code failed")

    pool.submit(hold_the_thread)
    assert busy.wait(10)
    failing = pool.submit(fail)
    later = [pool.submit(done.append, n) for n in range(3)]
    release.set()
    pool.shutdown(wait=True)  # the stop sentinel is taken after every queued activation
    with pytest.raises(RuntimeError, match="the workflow code failed"):
        failing.result(0)
    assert all(future.done() for future in later)
    assert done == [0, 1, 2]
