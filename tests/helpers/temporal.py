"""Starting deployments and reading them back through Temporal: status, stages, failures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState, WorkflowTaskFailedCause
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ecs_canary.models import DeploymentRequest, DeploymentResult, DeploymentStatus
from ecs_canary.names import WORKFLOW_TYPE, workflow_id_for
from tests.helpers.waiting import wait_until

# The whole history of a run that failed in its first workflow task, with no retry.
FAILED_AT_ONCE = [
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
]


# A workflow task timeout for tests that wait on one: a worker killed in a task, or a task the
# SDK retries (it reports only a task's first failure; each later attempt waits out the
# timeout). 4 s rather than Temporal's 10 s: the tests' tasks take well under a second, and one
# that timed out on a loaded machine would only be tried again.
SHORT_TASK_TIMEOUT = timedelta(seconds=4)


async def start(
    client: Client,
    task_queue: str,
    request: dict[str, Any] | DeploymentRequest,
    workflow_id: str | None = None,
    task_timeout: timedelta | None = None,
) -> WorkflowHandle:
    """Start a deployment under its own workflow id (or `workflow_id`); `task_timeout` is the
    run's workflow task timeout (Temporal's 10 s without it)."""
    body = request.model_dump(mode="json") if isinstance(request, DeploymentRequest) else request
    wf_id = workflow_id or workflow_id_for(body["cluster"], body["service_name"])
    return await client.start_workflow(
        WORKFLOW_TYPE,
        body,
        id=wf_id,
        task_queue=task_queue,
        task_timeout=task_timeout,
        result_type=DeploymentResult,
    )


async def status(handle: WorkflowHandle) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def wait_for_stage(
    handle: WorkflowHandle, stage: str, gate_open: bool | None = None, timeout: float = 60
) -> DeploymentStatus:
    async def reached() -> bool:
        current = await status(handle)
        return current.stage.value == stage and (
            gate_open is None or current.gate_open == gate_open
        )

    await wait_until(reached, timeout)
    return await status(handle)


async def activity_running(handle: WorkflowHandle, activity_type: str) -> bool:
    """Whether an activity of `activity_type` has started and not ended (as `describe` shows)."""
    description = await handle.describe()
    return any(
        pending.activity_type.name == activity_type
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def gate_is_open(handle: WorkflowHandle) -> bool:
    """False also while no worker answers queries (the only one may be restarting)."""
    try:
        return (await status(handle)).gate_open
    except Exception:  # noqa: BLE001 - the query waits for a worker that may be restarting
        return False


async def approve_at_gate(
    handle: WorkflowHandle, by: str = "alice", timeout: float = 60
) -> DeploymentResult:
    """Wait for the gate to open, approve the canary (a signal) and return the run's result."""
    await wait_until(lambda: gate_is_open(handle), timeout=timeout)
    await handle.signal("approve", {"by": by})
    return await handle.result()


async def run_status(handle: WorkflowHandle) -> WorkflowExecutionStatus | None:
    """The status of the handle's run, or None if there is no run under its id."""
    try:
        return (await handle.describe()).status
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def is_running(handle: WorkflowHandle) -> bool:
    """True once a run under this id is open (an earlier test's closed run may share the id)."""
    return await run_status(handle) == WorkflowExecutionStatus.RUNNING


async def failed_with(handle: WorkflowHandle) -> ApplicationError:
    """The error the handle's run failed with (it must fail); waits for the run to close."""
    with pytest.raises(WorkflowFailureError) as caught:
        await handle.result()
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def failure_of(handle: WorkflowHandle) -> tuple[ApplicationError, DeploymentResult]:
    """The error a failed run ended with, and the DeploymentResult in its details."""
    cause = await failed_with(handle)
    return cause, DeploymentResult.model_validate(cause.details[0])


async def assert_failed_at_once(handle: WorkflowHandle, error_type: str) -> str:
    """The run failed with `error_type`, not retryable, in its first workflow task: no task
    retried, no timer, no activity, nothing but the failure (and any signal sent to it).
    Returns the error's message."""
    cause = await failed_with(handle)
    assert (cause.type, cause.non_retryable) == (error_type, True), cause
    history = await handle.fetch_history()
    events = [
        event.event_type
        for event in history.events
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert events == FAILED_AT_ONCE, history.to_json()
    return cause.message


async def refused_continuations(client: Client, workflow_id: str, run_id: str) -> int:
    """How many times Temporal refused run `run_id`'s continue-as-new because a signal was
    still unhandled (a workflow task failed with cause UnhandledCommand)."""
    unhandled = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    run = client.get_workflow_handle(workflow_id, run_id=run_id)
    refused = [
        event
        async for event in run.fetch_history_events()
        if event.HasField("workflow_task_failed_event_attributes")
        and event.workflow_task_failed_event_attributes.cause == unhandled
    ]
    return len(refused)
