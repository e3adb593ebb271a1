"""Reading one deployment run from Temporal, for `status`, `pending`, `history` and `watch`.

The CLI never talks to ECS: the `status` query gives the stage timeline and the gate, the
heartbeat details (`WaitProgress`) of the run's pending wait activity give the live task counts
and ECS events, and the result gives the outcome (a failed run's is in its error's details, a
cancelled run's in the `status` query).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias

from pydantic import ValidationError
from temporalio.client import (
    Client,
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
    if pinned is not None and pinned != current:
        raise CliError(
            f"run {pinned} is not the current run of {workflow_id} (that is {current}): the "
            f"deployment changed; check python starter.py status {workflow_id} and decide again"
        )
    if description.status != WorkflowExecutionStatus.RUNNING:
        ended = description.status.name.lower() if description.status else "ended"
        raise CliError(f"run {current} of {workflow_id} has {ended}: there is no gate to decide")
    return current


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
