"""The rules of a budget shared by several workers: equal shares rounded down, live workers
by their last poll, and a worker's calls held until its share is set."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.taskqueue.v1 import PollerInfo
from temporalio.api.workflowservice.v1 import DescribeTaskQueueResponse
from temporalio.service import RPCError, RPCStatusCode

from activities.aws import CallBudget
from activities.shared_budget import POLLER_GONE_SECONDS, SharedBudget, live_identities, share
from worker import until_stopped

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def _poller(identity: str, seconds_ago: float) -> PollerInfo:
    seen = Timestamp()
    seen.FromDatetime(NOW - timedelta(seconds=seconds_ago))
    return PollerInfo(identity=identity, last_access_time=seen)


@pytest.mark.parametrize(
    ("budget", "workers", "each"),
    [(100, 1, 99), (100, 3, 32), (30, 3, 9), (10, 4, 1), (2, 3, 1), (100, 0, 99)],
)
def test_each_worker_takes_an_equal_part_less_one_call_and_at_least_one(budget, workers, each):
    assert share(budget, workers) == each
    if budget >= workers >= 1:
        assert share(budget, workers) * workers <= budget


def test_a_worker_counts_until_its_last_poll_ages_out():
    pollers = [
        _poller("1@a", 0),
        _poller("2@b", 59),  # an idle worker's long poll, still open
        _poller("3@c", POLLER_GONE_SECONDS + 1),  # gone
    ]
    assert live_identities(pollers, NOW) == {"1@a", "2@b"}


def test_no_rate_holds_every_call_until_a_share_is_set():
    budget = CallBudget(100)
    budget.set_rate(0)
    granted = threading.Event()
    caller = threading.Thread(target=lambda: (budget.acquire(), granted.set()), daemon=True)
    caller.start()
    assert not granted.wait(0.3)  # held: no rate yet (a condition that must stay false)
    assert budget.waiting == 1
    budget.set_rate(10)
    assert granted.wait(5)
    caller.join(5)
    assert budget.calls_per_second == 10 and budget.waiting == 0


class _TaskQueue:
    """Answers DescribeTaskQueue as scripted: a list of identities, or an error."""

    def __init__(self) -> None:
        self.answer: list[str] | Exception = []
        self.asked = 0

    async def describe_task_queue(self, request: Any) -> DescribeTaskQueueResponse:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return DescribeTaskQueueResponse(pollers=[_live(identity) for identity in self.answer])


def _live(identity: str) -> PollerInfo:
    seen = Timestamp()
    seen.GetCurrentTime()
    return PollerInfo(identity=identity, last_access_time=seen)


async def _rate_becomes(budget: CallBudget, rate: int, at_most: bool = False) -> None:
    for _ in range(500):
        if budget.calls_per_second == rate or (at_most and budget.calls_per_second <= rate):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the rate stayed {budget.calls_per_second}, not {rate}")


async def test_a_worker_joins_after_the_others_saw_it_and_shrinks_when_it_cannot_look():
    """The Temporal server is scripted here: what matters is how the share follows it (the
    real server is in tests/e2e/test_shared_budget.py)."""
    queue = _TaskQueue()
    client = SimpleNamespace(identity="me@host", namespace="default", workflow_service=queue)
    budget = CallBudget(100)
    shared = SharedBudget(client, "q", 60, budget, refresh_seconds=0.01)  # type: ignore[arg-type]
    following = asyncio.create_task(shared.run())
    try:
        await asyncio.sleep(0.05)
        assert budget.calls_per_second == 0  # not listed yet: no call at all
        queue.answer = ["me@host", "other@host"]
        await _rate_becomes(budget, 29)
        assert queue.asked >= 2 * 5  # five refreshes (two kinds of poller each) first
        queue.answer = RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")
        # As if a third worker had joined (19), and another at each refresh it misses.
        await _rate_becomes(budget, 18, at_most=True)
        queue.answer = ["me@host", "other@host"]
        await _rate_becomes(budget, 29)
    finally:
        following.cancel()


async def test_a_worker_that_may_not_list_the_task_queue_stops_with_the_reason():
    queue = _TaskQueue()
    queue.answer = RPCError("no", RPCStatusCode.PERMISSION_DENIED, b"")
    client = SimpleNamespace(identity="me@host", namespace="default", workflow_service=queue)
    shared = SharedBudget(client, "q", 60, CallBudget(10))  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as stopped:
        await shared.check_access()
    assert "DescribeTaskQueue" in str(stopped.value) and "q" in str(stopped.value)


def _following(queue: _TaskQueue) -> SharedBudget:
    client = SimpleNamespace(identity="me@host", namespace="default", workflow_service=queue)
    return SharedBudget(client, "q", 60, CallBudget(100), refresh_seconds=0.01)  # type: ignore[arg-type]


async def test_a_worker_whose_share_stops_being_followed_stops_with_the_error():
    """Not an RPC error (those shrink the share): a bug, say. Its calls would stay held."""
    queue = _TaskQueue()
    queue.answer = ValueError("a poller without an identity")
    with pytest.raises(SystemExit) as stopped:
        await until_stopped(asyncio.Event(), _following(queue))  # its first look fails
    assert "shared ECS budget stopped following" in str(stopped.value)
    assert "a poller without an identity" in str(stopped.value)


async def test_a_stopped_worker_stops_following_its_share():
    queue = _TaskQueue()
    queue.answer = ["me@host"]
    stop = asyncio.Event()
    waiting = asyncio.create_task(until_stopped(stop, _following(queue)))
    while queue.asked < 2:  # following: it has asked the server
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(waiting, timeout=10)
    asked = queue.asked
    for _ in range(5):  # a few of its refreshes go by: it asks no more
        await asyncio.sleep(0.01)
    assert queue.asked == asked
