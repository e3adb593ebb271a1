"""Reading one deployment run from Temporal, for `status`, `pending`, `history` and `watch`.

The CLI never talks to ECS: the `status` query gives the stage timeline and the gate, the
heartbeat details (`WaitProgress`) of the run's pending wait activity give the live task counts
and ECS events, and the result gives the outcome (a failed run's is in its error's details, a
cancelled run's in the `status` query).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowContinuedAsNewError,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError, RPCStatusCode

from cli.errors import CliError
from cli.format import one_line
from ecs_canary.models import DeploymentResult, DeploymentStatus, WaitProgress

QUERY_TIMEOUT = timedelta(seconds=5)

# A handle on one run of the deployment workflow, whose result is a DeploymentResult.
RunHandle: TypeAlias = WorkflowHandle[Any, DeploymentResult]


def run_handle(client: Client, workflow_id: str, run_id: str | None = None) -> RunHandle:
    return client.get_workflow_handle(workflow_id, run_id=run_id, result_type=DeploymentResult)


async def describe(handle: RunHandle) -> WorkflowExecutionDescription:
    try:
        return await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no deployment with workflow id {handle.id}") from None
        raise


@dataclass(frozen=True)
class RunOf:
    """The run a decision is for: its workflow id and its run id (`decision_run` finds it)."""

    workflow_id: str
    run_id: str


async def decision_run(client: Client, workflow_id: str, pinned: str | None) -> str:
    """The run a decision is for: the workflow's current run, which must be running and, when
    `pinned` (--run-id), that one. A decision goes to this run only, so a deployment replaced
    since the decision was typed is never decided by it."""
    description = await describe(run_handle(client, workflow_id))
    current = description.run_id
    if (
        pinned is not None
        and pinned != current
        and not await _continued_from(client, description, pinned)
    ):
        raise CliError(
            f"run {pinned} is not the current run of {workflow_id} (that is {current}): the "
            f"deployment changed; check python starter.py status {workflow_id} and decide again"
        )
    if description.status != WorkflowExecutionStatus.RUNNING:
        ended = description.status.name.lower() if description.status else "ended"
        raise CliError(f"run {current} of {workflow_id} has {ended}: there is no gate to decide")
    return current


async def _continued_from(
    client: Client, current: WorkflowExecutionDescription, earlier: str
) -> bool:
    """Whether run `earlier` is of the same deployment as `current`: a run that continued as
    new at its gate, in the same chain of runs (workflows.continue_at_gate)."""
    try:
        described = await run_handle(client, current.id, earlier).describe()
    except RPCError:
        return False
    return described.status == WorkflowExecutionStatus.CONTINUED_AS_NEW and first_run_id(
        described
    ) == first_run_id(current)


def first_run_id(description: WorkflowExecutionDescription) -> str:
    """The first run of the chain this run belongs to (its own id unless it continued)."""
    return description.raw_description.workflow_execution_info.first_run_id or description.run_id


async def continued_run(
    client: Client, earlier: WorkflowExecutionDescription
) -> WorkflowExecutionDescription | None:
    """The run `earlier` continued as, if it continued as new (None otherwise): the current
    run of the workflow, when it belongs to the same chain."""
    if earlier.status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
        return None
    current = await describe(run_handle(client, earlier.id))
    return current if first_run_id(current) == first_run_id(earlier) else None


# How long a decision that met its run continuing as new waits for that run to close.
_CONTINUATION_WAIT_SECONDS = 5.0


async def continued_since(client: Client, workflow_id: str, run_id: str) -> str | None:
    """The run that run `run_id` continued as new into, or None when it did not: it ended
    otherwise, still runs, or cannot be read (the caller then reports the error that brought
    it here). A run that was continuing as new when a message reached it ("workflow is
    closing") closes a moment later: this waits for its close, as Temporal reports it."""
    closing = run_handle(client, workflow_id, run_id)
    try:
        await asyncio.wait_for(closing.result(follow_runs=False), _CONTINUATION_WAIT_SECONDS)
    except WorkflowContinuedAsNewError as continued:
        return continued.new_execution_run_id
    except (TimeoutError, WorkflowFailureError, RPCError):
        return None
    return None


async def query_status(handle: RunHandle) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus, rpc_timeout=QUERY_TIMEOUT)


async def live_progress(
    client: Client, description: WorkflowExecutionDescription
) -> WaitProgress | None:
    """The newest WaitProgress among the run's pending activities' heartbeats, if any."""
    found: WaitProgress | None = None
    for activity in description.raw_description.pending_activities:
        payloads = activity.heartbeat_details.payloads
        if not payloads:
            continue
        try:
            values = await client.data_converter.decode(payloads)
            found = WaitProgress.model_validate(values[0])
        except (ValidationError, ValueError, TypeError, IndexError):
            continue
    return found


async def final_result(handle: RunHandle) -> tuple[DeploymentResult | None, str | None]:
    """The run's DeploymentResult and, when it did not complete, what ended it. A failed run
    carries its result in the error's details; a cancelled run's cancellation carries none, so
    its result comes from the `status` query (which needs a worker up)."""
    try:
        return await handle.result(), None
    except WorkflowFailureError as err:
        cause = err.cause
        details = getattr(cause, "details", None) or ()
        result = None
        if details:
            try:
                result = DeploymentResult.model_validate(details[0])
            except ValidationError:
                result = None
        elif isinstance(cause, CancelledError):
            try:
                result = (await query_status(handle)).result
            except RPCError:
                result = None
        return result, one_line(getattr(cause, "message", None) or cause)
