"""The worker's ECS call budget: how many calls leave per window, and who goes first.

The budget's clock is replaced by a fake one (`activities.aws.time`) that moves only when a
test moves it: while it stands still nothing beyond capacity can be granted, whatever the
threads' real timing, so which queued call goes next is decided by the rules alone. The window
is short (a waiter's real wait for its next look at the clock is at most one window), and so
are the slacks, so that the fake time a test spends queueing stays within one window.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from temporalio.exceptions import CancelledError

import activities.aws
from activities.aws import CallBudget

# Binary fractions, so that the fake times add up exactly.
WINDOW = 0.0625
READ_SLACK = 0.015625
BACKGROUND_SLACK = 0.03125
START = 100.0
TIMEOUT = 5.0  # real seconds any wait for another thread may take before the test fails


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(activities.aws, "time", fake)
    yield fake


def _budget(calls_per_second: float = 1, **slack: float) -> CallBudget:
    slack.setdefault("read_slack_seconds", READ_SLACK)
    slack.setdefault("background_slack_seconds", BACKGROUND_SLACK)
    budget = CallBudget(calls_per_second, **slack)
    budget.WINDOW_SECONDS = WINDOW  # this instance only
    return budget


def _until(predicate: Callable[[], bool]) -> None:
    """Wait for a condition another thread brings about."""
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


class Caller:
    """A thread making one ECS call through the budget."""

    def __init__(self, budget: CallBudget, clock: FakeClock, operation: str | None) -> None:
        self.operation = operation
        self.granted_at: float | None = None
        self.error: BaseException | None = None
        self._budget, self._clock = budget, clock
        self.thread = threading.Thread(target=self._call, daemon=True)

    def _call(self) -> None:
        try:
            if self.operation is None:
                self._budget.acquire()
            else:
                self._budget.acquire(event_name=f"before-send.ecs.{self.operation}", request=None)
            self.granted_at = self._clock.now
        except BaseException as err:
            self.error = err

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), f"{self.operation} still waits for the budget"


def _queue(budget: CallBudget, clock: FakeClock, *operations: str | None) -> list[Caller]:
    """Queue the operations one after another, each in line before the next arrives."""
    callers = []
    for operation in operations:
        before = budget.waiting
        callers.append(Caller(budget, clock, operation))
        callers[-1].thread.start()
        _until(lambda b=before: budget.waiting == b + 1)  # type: ignore[misc]
    return callers


def _order(budget: CallBudget, clock: FakeClock, callers: list[Caller]) -> list[str | None]:
    """Move the clock a window at a time, so that one queued call goes each time; the
    operations in the order they went."""
    went: list[Caller] = []
    while len(went) < len(callers):
        clock.advance(WINDOW * 1.5)
        expected = len(went) + 1
        _until(lambda n=expected: sum(c.granted_at is not None for c in callers) == n)  # type: ignore[misc]
        went += [c for c in callers if c.granted_at is not None and c not in went]
    for caller in callers:
        caller.join()
        assert caller.error is None
    assert budget.waiting == 0
    return [caller.operation for caller in went]


@pytest.mark.parametrize(("rate", "capacity"), [(0.5, 1), (1, 1), (2.9, 2), (5, 5)])
def test_capacity_is_the_whole_calls_per_second_and_at_least_one(clock, rate, capacity):
    budget = _budget(rate)
    for _ in range(capacity):
        budget.acquire(event_name="before-send.ecs.DescribeServices")  # at once
    (over,) = _queue(budget, clock, "DescribeServices")
    assert over.granted_at is None
    clock.advance(WINDOW)
    over.join()
    assert over.granted_at == START + WINDOW


def test_a_call_over_capacity_goes_once_the_oldest_grant_leaves_the_window(clock):
    budget = _budget(2)
    budget.acquire()  # at START
    clock.advance(WINDOW / 2)
    budget.acquire()  # half a window later
    (third,) = _queue(budget, clock, "DescribeServices")
    clock.advance(WINDOW / 4)
    assert third.granted_at is None and budget.waiting == 1
    clock.advance(WINDOW / 4)  # START + WINDOW: the first grant has left the window
    third.join()
    assert third.granted_at == START + WINDOW
    assert budget.waiting == 0


def test_queued_changes_go_before_queued_reads(clock):
    budget = _budget(1)
    budget.acquire()
    callers = _queue(
        budget,
        clock,
        "DescribeServices",
        "ListTasks",
        "CreateService",
        "DescribeServices",
        "UpdateService",
    )
    assert _order(budget, clock, callers) == [
        "CreateService",
        "UpdateService",
        "DescribeServices",
        "ListTasks",
        "DescribeServices",
    ]


@pytest.mark.parametrize(
    "change", ["RegisterTaskDefinition", "CreateService", "UpdateService", "DeleteService"]
)
def test_every_change_goes_before_a_waiting_read(clock, change):
    budget = _budget(1)
    budget.acquire()
    callers = _queue(budget, clock, "DescribeServices", change)
    assert _order(budget, clock, callers) == [change, "DescribeServices"]


def test_a_read_gives_way_only_to_changes_within_its_slack(clock):
    budget = _budget(1)
    budget.acquire()
    callers = _queue(budget, clock, "DescribeServices")
    clock.advance(READ_SLACK / 2)
    callers += _queue(budget, clock, "UpdateService")  # within the read's slack: goes first
    clock.advance(READ_SLACK)
    callers += _queue(budget, clock, "CreateService")  # past it: waits its turn
    assert _order(budget, clock, callers) == ["UpdateService", "DescribeServices", "CreateService"]


def test_a_rollback_target_check_gives_way_for_its_background_slack(clock):
    """DescribeTaskDefinition runs beside the canary's wait: a poll or a change it held back
    would delay a deployment now, so it gives way to both, and for longer than a poll does."""
    budget = _budget(1)
    budget.acquire()
    callers = _queue(budget, clock, "DescribeTaskDefinition")
    clock.advance(READ_SLACK / 2)
    callers += _queue(budget, clock, "DescribeServices", "CreateService")
    clock.advance(BACKGROUND_SLACK)  # past the check's slack, so a read waits its turn
    callers += _queue(budget, clock, "ListTasks")
    assert _order(budget, clock, callers) == [
        "CreateService",
        "DescribeServices",
        "DescribeTaskDefinition",
        "ListTasks",
    ]


def test_a_call_without_an_operation_name_counts_as_a_read(clock):
    budget = _budget(1)
    budget.acquire()
    callers = _queue(budget, clock, None, "DeleteService")
    assert _order(budget, clock, callers) == ["DeleteService", None]


def _cancel(thread: threading.Thread) -> None:
    """What Temporal does to a cancelled sync activity: CancelledError raised in its thread."""
    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(CancelledError)
    )


def test_a_caller_that_leaves_the_line_does_not_stall_those_behind_it(clock):
    """The first in line is cancelled while it waits for the window; the one behind it waits
    without a timeout, so it moves only if the leaver hands the turn on."""
    budget = _budget(1)
    budget.acquire()
    leaver, behind = _queue(budget, clock, "CreateService", "DescribeServices")
    _cancel(leaver.thread)
    leaver.join()
    assert isinstance(leaver.error, CancelledError) and leaver.granted_at is None
    assert budget.waiting == 1
    clock.advance(WINDOW)
    behind.join()
    assert behind.error is None and behind.granted_at == START + WINDOW
    assert budget.waiting == 0


def test_a_spread_budget_grants_a_windows_share_apart(clock):
    budget = CallBudget(
        4, read_slack_seconds=READ_SLACK, background_slack_seconds=BACKGROUND_SLACK, spread=True
    )
    budget.WINDOW_SECONDS = WINDOW
    gap = WINDOW / 4
    budget.acquire(event_name="before-send.ecs.CreateService")  # at once: nothing granted yet
    second, third = _queue(budget, clock, "CreateService", "CreateService")
    clock.advance(gap / 2)
    assert second.granted_at is None  # within capacity, but too soon after the first
    clock.advance(gap / 2)
    second.join()
    assert second.granted_at == START + gap and third.granted_at is None
    clock.advance(gap)
    third.join()
    assert third.granted_at == START + 2 * gap


def test_a_caller_waiting_for_its_spacing_checks_in_once_a_check_in_interval_not_each_wait():
    """The first in line of a spread budget waits a window's share between grants, many short
    waits; its wait's heartbeat (`while_waiting`) is due only once a CHECK_IN_SECONDS."""
    check_ins: list[float] = []
    budget = CallBudget(50, spread=True, while_waiting=lambda: check_ins.append(time.monotonic()))
    started = time.monotonic()
    for _ in range(30):  # 29 waits of about 22 ms for the spacing
        budget.acquire(event_name="before-send.ecs.DescribeServices")
    elapsed = time.monotonic() - started
    assert elapsed >= 29 * budget.WINDOW_SECONDS / 50 * 0.9  # it did wait for the spacing
    assert len(check_ins) <= elapsed / CallBudget.CHECK_IN_SECONDS
