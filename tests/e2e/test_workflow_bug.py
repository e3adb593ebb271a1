"""A bug in the workflow code is not a failed deployment (workflows/canary.py, module docstring):
it fails the workflow task, which Temporal retries, and the run waits where the bug struck, its
canary still serving, until a worker with the fix resumes it from its history, or an operator
cancels it, which cleans up as any cancel does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from ecs_canary.models import SteadyState
from tests.helpers import (
    SHORT_TASK_TIMEOUT,
    approve_at_gate,
    describe,
    existing_service,
    in_process_worker,
    status,
    wait_until,
)
from workflows.state import DeploymentState

BUG = "unsupported operand type(s) for +: 'int' and 'list'"
UNHANDLED = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE


def _saw_with_a_bug(self: DeploymentState, steady: SteadyState) -> None:
    """`DeploymentState.saw` as a careless change would ship it: a TypeError."""
    self.running_count = steady.running_count + steady.recent_events  # type: ignore[operator]


async def _task_retried(handle: WorkflowHandle) -> bool:
    """The run's pending workflow task is on its third attempt or later."""
    return (await handle.describe()).raw_description.pending_workflow_task.attempt >= 3


def _failed_tasks(history: Any) -> list[Any]:
    return [
        event.workflow_task_failed_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


@asynccontextmanager
async def _held_by_a_bug(
    client: Any, task_queue: str, deploy: Any, request: dict[str, Any], monkeypatch: Any
) -> AsyncIterator[WorkflowHandle]:
    """A deployment on a worker whose workflow code raises a TypeError once the canary is
    steady; yields the run once Temporal has retried its failed workflow task, and checks on
    the way what an operator sees: a Running run, the error in its history, a serving canary."""
    with monkeypatch.context() as bug:
        bug.setattr(DeploymentState, "saw", _saw_with_a_bug)
        async with in_process_worker(client, task_queue):
            handle = await deploy(request, task_timeout=SHORT_TASK_TIMEOUT)
            await wait_until(lambda: _task_retried(handle), timeout=60)

            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            failed = _failed_tasks(await handle.fetch_history())
            assert failed, "the history shows the failed workflow task"
            assert (failed[0].cause, failed[0].failure.message) == (UNHANDLED, BUG)
            assert "_saw_with_a_bug" in failed[0].failure.stack_trace
            yield handle


async def test_a_bug_holds_the_run_with_its_canary_until_a_fixed_worker_resumes_it(
    client, task_queue, requests, ecs, deploy, starter, monkeypatch
):
    existing_service(ecs, requests)
    async with _held_by_a_bug(client, task_queue, deploy, requests.raw(), monkeypatch) as handle:
        # The canary keeps serving, as while verification waits for a decision.
        canary = describe(ecs, "myappCanary")
        assert (canary["status"], canary["runningCount"]) == ("ACTIVE", 1)
        # No worker can answer the status query until the task succeeds; the CLI says so.
        shown = await starter.run("status", handle.id)
        assert shown.code == 1
        assert "Workflow Task in failed state" in shown.err, shown.err

    # The fixed worker replays the history and carries on from the canary's wait.
    async with in_process_worker(client, task_queue):
        result = await approve_at_gate(handle)
    assert result.outcome == "succeeded" and result.canary_deleted
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn


async def test_a_run_held_by_a_bug_can_be_cancelled_and_deletes_its_canary(
    client, task_queue, requests, ecs, deploy, monkeypatch
):
    """The cancel reaches the run where it waits, before the code with the bug runs again, so
    the cleanup path takes the canary away without a fixed worker."""
    old_arn = existing_service(ecs, requests)
    async with _held_by_a_bug(client, task_queue, deploy, requests.raw(), monkeypatch) as handle:
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        ended = await status(handle)  # the closed run replays: the bug is not on its path

    assert isinstance(caught.value.cause, CancelledError), caught.value.cause
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert ended.result is not None
    assert ended.result.outcome == "cancelled" and ended.result.canary_deleted
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn
