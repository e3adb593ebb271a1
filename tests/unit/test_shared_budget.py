"""The rules of a budget shared by several workers: equal shares rounded down, live workers
by their last poll, and a worker's calls held until its share is set."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.taskqueue.v1 import PollerInfo

from activities.aws import CallBudget
from activities.shared_budget import POLLER_GONE_SECONDS, live_identities, share

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


def _poller(identity: str, seconds_ago: float) -> PollerInfo:
    seen = Timestamp()
    seen.FromDatetime(NOW - timedelta(seconds=seconds_ago))
    return PollerInfo(identity=identity, last_access_time=seen)


@pytest.mark.parametrize(
    ("budget", "workers", "each"),
    [(100, 1, 100), (100, 3, 33), (30, 3, 10), (10, 4, 2), (2, 3, 1), (100, 0, 100)],
)
def test_each_worker_takes_an_equal_share_rounded_down_and_at_least_one(budget, workers, each):
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
