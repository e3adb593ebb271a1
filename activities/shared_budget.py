"""One ECS call budget for an account and region, shared by every worker on the task queue.

ECS throttles per account and region, but each worker limits only its own calls. With
`ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND` set, the workers agree on their shares without
talking to each other: Temporal already knows who they are. Each worker asks the server which
workers poll its task queue (DescribeTaskQueue's pollers, the same list the Web UI's task queue
page shows) and takes an equal share of the budget, asking again every `refresh_seconds`.

The shares add up to no more than the budget (as long as it is at least one call per second per
worker: a share never drops below one):
- a worker that joins makes no ECS call until every other worker has had time to see it and
  shrink its own share (five refreshes after the server first lists it);
- a worker that leaves (or dies) is listed until its last poll ages out, so the others grow
  their shares late, never early;
- a worker that cannot reach the server shrinks its share at every refresh it misses, as if
  one more worker had joined each time.

Every worker on the task queue must run with the same budget: one without it still counts in
the split but keeps its own ECS_CANARY_ECS_CALLS_PER_SECOND.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import PollerInfo, TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, DescribeTaskQueueResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.aws import CallBudget

# A worker's long poll lasts up to about a minute; a poller not seen for longer is gone.
POLLER_GONE_SECONDS = 75.0
REFRESH_SECONDS = 1.0
# Each worker leaves one call of its share unused. A worker paces its own calls over any second
# (activities.aws.CallBudget), so its calls fit within a second as they leave it; one held up on
# its way (a garbage collection, a busy core) can still reach ECS in the next second, on top of
# that second's own calls. The call each worker leaves is room for its late one: three workers
# sharing 100 calls a second send at most 3 x 32 in any second, and 99 reach ECS in one even
# if each has a call late. (Counted where they arrive, three workers paced at 96 calls a second
# reached at most 95-96 in the train bench's runs, and at 87.3 (a window of 1.1 s) at most 87.)
LATE_CALLS_PER_WORKER = 1
# A joining worker waits this many refreshes after the server first lists it: time for every
# other worker, even a busy one, to see it and shrink its share first.
_JOIN_REFRESHES = 5
_WARN_EVERY_SECONDS = 60.0
_POLLED = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


def live_identities(pollers: Iterable[PollerInfo], now: datetime) -> set[str]:
    """The workers that polled within POLLER_GONE_SECONDS."""
    return {
        poller.identity
        for poller in pollers
        if (now - poller.last_access_time.ToDatetime(UTC)).total_seconds() <= POLLER_GONE_SECONDS
    }


def share(budget: float, workers: int) -> int:
    """Each worker's calls per second: an equal part of the budget rounded down (the budget's
    safe side), less LATE_CALLS_PER_WORKER, and at least one, or a budget smaller than the
    number of workers would stop them all."""
    return max(1, int(budget / max(1, workers)) - LATE_CALLS_PER_WORKER)


@dataclass
class SharedBudget:
    """Keeps this worker's CallBudget at its share of the account's budget (see the module)."""

    client: Client
    task_queue: str
    budget: float
    calls: CallBudget
    refresh_seconds: float = REFRESH_SECONDS

    def __post_init__(self) -> None:
        # No ECS call before this worker has its share: held from the start, until `run`
        # has seen it listed and the others have had time to see it.
        self.calls.set_rate(0)

    async def check_access(self) -> None:
        """Before the worker starts: a worker that may not list the task queue's workers would
        never get a share, so it stops with the reason instead of holding every call."""
        try:
            await self._describe(_POLLED[0])
        except RPCError as err:
            if err.status == RPCStatusCode.PERMISSION_DENIED:
                raise SystemExit(
                    "worker: ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND needs permission to describe "
                    f"task queue {self.task_queue} (DescribeTaskQueue): {err.message}"
                ) from None

    async def run(self) -> None:
        """Until cancelled: hold calls until this worker is listed and the others have had
        time to see it, then follow the number of workers."""
        log = structlog.get_logger("ecs_canary.shared_budget")
        identity = self.client.identity
        seen_at: float | None = None
        workers, warned_at = 0, float("-inf")
        while True:
            try:
                listed = await self._workers()
            except RPCError as err:
                # Unseen, another worker may have joined: shrink as if one had (never grow).
                if workers:
                    workers += 1
                    self.calls.set_rate(share(self.budget, workers))
                if time.monotonic() - warned_at >= _WARN_EVERY_SECONDS:
                    warned_at = time.monotonic()
                    log.warning(
                        "Could not list the task queue's workers (DescribeTaskQueue); the share "
                        "shrinks as if one more had joined",
                        error=str(err),
                        calls_per_second=self.calls.calls_per_second,
                    )
            else:
                if identity in listed:
                    seen_at = seen_at or time.monotonic()
                    settled = time.monotonic() - seen_at >= _JOIN_REFRESHES * self.refresh_seconds
                    if settled and len(listed) != workers:
                        workers = len(listed)
                        self.calls.set_rate(share(self.budget, workers))
                        log.info(
                            "ECS call budget shared",
                            workers=workers,
                            budget=self.budget,
                            calls_per_second=self.calls.calls_per_second,
                        )
            await asyncio.sleep(self.refresh_seconds)

    async def _workers(self) -> set[str]:
        """Identities of the workers polling the task queue (workflow or activity tasks)."""
        now = datetime.now(UTC)
        found: set[str] = set()
        for kind in _POLLED:
            found |= live_identities((await self._describe(kind)).pollers, now)
        return found

    async def _describe(self, kind: TaskQueueType.ValueType) -> DescribeTaskQueueResponse:
        return await self.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=self.task_queue),
                task_queue_type=kind,
            )
        )
