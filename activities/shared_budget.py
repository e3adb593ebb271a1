"""One ECS call budget for an account and region, shared by every worker on the task queue.

ECS throttles per account and region, but each worker limits only its own calls. With
`ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND` set, the workers agree on their shares without
talking to each other: Temporal already knows who they are. Each worker asks the server which
workers poll its task queue (DescribeTaskQueue's pollers, the same list the Web UI's task queue
page shows) and takes an equal share of the budget, asking again every `refresh_seconds`.

The shares never add up to more than the budget:
- a worker that joins makes no ECS call until every other worker has had time to see it and
  shrink its own share (two refreshes after the server first lists it);
- a worker that leaves (or dies) is listed until its last poll ages out, so the others grow
  their shares late, never early.

A worker that cannot reach the server keeps the share it had: the budget's safe side.
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
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.aws import CallBudget

# A worker's long poll lasts up to about a minute; a poller not seen for longer is gone.
POLLER_GONE_SECONDS = 75.0
REFRESH_SECONDS = 1.0
_POLLED = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


def live_identities(pollers: Iterable[PollerInfo], now: datetime) -> set[str]:
    """The workers that polled within POLLER_GONE_SECONDS."""
    return {
        poller.identity
        for poller in pollers
        if (now - poller.last_access_time.ToDatetime(UTC)).total_seconds() <= POLLER_GONE_SECONDS
    }


def share(budget: float, workers: int) -> int:
    """Each worker's calls per second: an equal part, rounded down (the budget's safe side),
    and at least one, or a budget smaller than the number of workers would stop them all."""
    return max(1, int(budget / max(1, workers)))


@dataclass
class SharedBudget:
    """Keeps this worker's CallBudget at its share of the account's budget (see the module)."""

    client: Client
    task_queue: str
    budget: float
    calls: CallBudget
    refresh_seconds: float = REFRESH_SECONDS

    async def run(self) -> None:
        """Until cancelled: hold calls until this worker is listed and others had time to see
        it, then follow the number of workers."""
        log = structlog.get_logger("ecs_canary.shared_budget")
        identity = self.client.identity
        self.calls.set_rate(0)
        seen_at: float | None = None
        workers = 0
        while True:
            listed = await self._workers()
            if listed is not None and identity in listed:
                seen_at = seen_at or time.monotonic()
                settled = time.monotonic() - seen_at >= 2 * self.refresh_seconds
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

    async def _workers(self) -> set[str] | None:
        """Identities of the workers polling the task queue (workflow or activity tasks); None
        when the server does not answer."""
        found: set[str] = set()
        now = datetime.now(UTC)
        try:
            for kind in _POLLED:
                answer = await self.client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.client.namespace,
                        task_queue=TaskQueue(name=self.task_queue),
                        task_queue_type=kind,
                    )
                )
                found |= live_identities(answer.pollers, now)
        except RPCError as err:
            structlog.get_logger("ecs_canary.shared_budget").warning(
                "Could not list the task queue's workers (DescribeTaskQueue); this worker keeps "
                "its share, and makes no ECS call until it has a first one",
                error=str(err),
            )
            return None
        return found
