"""What a release train asks Temporal through the worker: before it starts anything, which of
its services are being deployed already (a run of `ecs-canary/<cluster>/<service>` still
running), so that the train is refused as a whole instead of failing one service at a time
mid-way; then how its deployments' runs ended. A train continues as new to keep its history
short: a run of it hears from Temporal of the close of each child it started, with the result
in it, and looks at those an earlier run started; how those ended, and how a cancelled one
ended (its result is in its memo), it reads here, from Temporal, rather than taking anyone's
word for it. Its deployments, in turn, read here from
the train's memo whether the train sent them a message (`train_sent`), and report to it
(`report_to_train`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError, RPCStatusCode

from activities.train_memo import describe_train
from ecs_canary.models import DeploymentResult
from ecs_canary.train import (
    CANARY_VERIFIED_SIGNAL,
    CANCELLED_RESULT_MEMO,
    DeploymentRun,
    DeploymentRunEnd,
    EndedDeploymentsInput,
    TrainReport,
)
from ecs_canary.train_sent import TrainSentCheck

# Describe calls in flight at once: a train of 1,000 asks in a few seconds without flooding
# the frontend.
_CONCURRENT_DESCRIBES = 20
_LISTING_UNSUPPORTED = (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.INVALID_ARGUMENT)
# A train holds at most 1,000 deployments (ecs_canary.train.MAX_DEPLOYMENTS): one page.
_LISTED_PER_PAGE = 1000


@activity.defn
async def running_deployments(workflow_ids: list[str]) -> list[str]:
    """The ids among `workflow_ids` whose latest run is still running, in the order given."""
    client = activity.client()
    slots = asyncio.Semaphore(_CONCURRENT_DESCRIBES)

    async def running(workflow_id: str) -> bool:
        async with slots:
            try:
                described = await client.get_workflow_handle(workflow_id).describe()
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise
        return described.status == WorkflowExecutionStatus.RUNNING

    found = await asyncio.gather(*(running(workflow_id) for workflow_id in workflow_ids))
    return [
        workflow_id
        for workflow_id, is_running in zip(workflow_ids, found, strict=True)
        if is_running
    ]


@activity.defn
async def ended_deployments(request: EndedDeploymentsInput) -> list[DeploymentRunEnd]:
    """How each run of `request.runs` that has closed ended (those still running are left
    out)."""
    client = activity.client()
    slots = asyncio.Semaphore(_CONCURRENT_DESCRIBES)
    runs, closed = request.runs, request.wait
    train = activity.info().workflow_id  # the caller: the children's parent
    if request.closed_since is not None and train is not None:
        listed = await _closed_children(client, train, request.closed_since)
        if listed is not None:
            runs, closed = [run for run in runs if (run.workflow_id, run.run_id) in listed], True

    async def ended(run: DeploymentRun) -> DeploymentRunEnd | None:
        handle = client.get_workflow_handle(
            run.workflow_id, run_id=run.run_id, result_type=DeploymentResult
        )
        async with slots:
            if not closed:
                described = await handle.describe()
                if described.status == WorkflowExecutionStatus.RUNNING:
                    return None
            try:
                result = await handle.result(follow_runs=False)
            except WorkflowFailureError as err:
                if isinstance(err.cause, CancelledError):
                    return await _cancelled(handle)
                return DeploymentRunEnd.failed(run.workflow_id, err.cause)
        return DeploymentRunEnd(workflow_id=run.workflow_id, result=result)

    found = await asyncio.gather(*(ended(run) for run in runs))
    return [end for end in found if end is not None]


async def _closed_children(
    client: Client, train: str, since: datetime
) -> set[tuple[str, str]] | None:
    """The runs (workflow id, run id) started by the train `train` that Temporal's visibility
    lists as closed since `since`: one query for a wave of hundreds, where describing each run
    in flight every second would cost the server a call per run. None when the train's id
    cannot be written in a query (a quote in an id a client chose) or the server cannot answer
    it: describe each run then."""
    if any(character in train for character in "'\\\""):
        return None
    query = (
        f"ParentWorkflowId = '{train}' AND ExecutionStatus != 'Running' "
        f"AND CloseTime >= '{since.isoformat()}'"
    )
    # The service's own call, not `Client.list_workflows`: only the ids are needed, and the
    # client decodes every row's search attributes (hundreds a listing, every second).
    request = ListWorkflowExecutionsRequest(
        namespace=client.namespace, query=query, page_size=_LISTED_PER_PAGE
    )
    closed: set[tuple[str, str]] = set()
    try:
        while True:
            page = await client.workflow_service.list_workflow_executions(request)
            closed.update(
                (row.execution.workflow_id, row.execution.run_id) for row in page.executions
            )
            if not page.next_page_token:
                return closed
            request.next_page_token = page.next_page_token
    except RPCError as err:
        if err.status not in _LISTING_UNSUPPORTED:
            raise
        # A server whose visibility cannot answer it (the time-skipping test server lists
        # nothing; an older one knows no ParentWorkflowId): describe each run instead.
        activity.logger.warning(f"Listed no closes, describing each run: {err.message}")
        return None


async def _cancelled(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentRunEnd:
    """A cancelled run: its details do not reach its error, so its result is read from its
    memo, where a deployment of a train writes it as it ends (`CANCELLED_RESULT_MEMO`)."""
    described = await handle.describe()
    recorded = await described.memo_value(CANCELLED_RESULT_MEMO, None)
    try:
        result = DeploymentResult.model_validate(recorded) if recorded is not None else None
    except ValidationError:
        result = None
    return DeploymentRunEnd(workflow_id=handle.id, cancelled=True, result=result)


@activity.defn
async def train_sent(check: TrainSentCheck) -> bool:
    """Whether the train `check.train` recorded `check.digest` under `check.key` in its memo
    (ecs_canary.train_sent): a describe of its latest run, never a query, so a wave of
    deployments checking at once costs the train no workflow task; the checks a worker makes
    at about the same time share one describe (activities.train_memo)."""
    described = await describe_train(activity.client(), check.train)
    if described is None:  # no such train: it sent nothing
        return False
    recorded = await described.memo_value(check.key, None, type_hint=str)
    return recorded == check.digest


@activity.defn
async def report_to_train(report: TrainReport) -> bool:
    """Send a deployment's `canary_verified` to the latest run of its train, as a client does
    (False: the train is not running, nobody to tell).

    A local activity, not a signal command: a workflow's signal to another workflow is one of
    Temporal's background tasks, which waits at most half a second for the train's lock, and
    the lock of a train of hundreds is seldom free that long while its wave starts and ends (its
    own workflow tasks, its children's starts and closes); each miss deferred the signal by a
    growing backoff (in a wave of 300: 2 s at the median, 12 s at worst), and the deployment
    with it. A client's signal waits its turn at the lock instead. It also spares the
    deployment the workflow task that a signal command's completion costs."""
    handle = activity.client().get_workflow_handle(report.train)
    try:
        await handle.signal(CANARY_VERIFIED_SIGNAL, report.report)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
