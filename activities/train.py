"""What a release train asks the worker before it starts anything: which of its services are
being deployed already (a run of `ecs-canary/<cluster>/<service>` still running), so that the
train is refused as a whole instead of failing one service at a time mid-way."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

# Describe calls in flight at once: a train of 1,000 asks in a few seconds without flooding
# the frontend.
_CONCURRENT_DESCRIBES = 20


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
