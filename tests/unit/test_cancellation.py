"""A cancelled sync activity stops only where it chooses (activities.cancellation): never with a
lock held, and never leaving the ECS budget's line or a describe batch stuck behind it.

Each activity runs in the SDK's ActivityEnvironment, which cancels a sync activity the way the
worker does: by raising CancelledError into its thread unless it was declared otherwise."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.aws import AwsClients, CallBudget, ServiceDescriber
from activities.cancellation import (
    check_cancelled_only_where_chosen,
    cleaning_up,
    raise_if_cancelled,
    stop_before_request,
    sync_activity,
)
from activities.polling import keep_alive, sleep_until_next_poll
from tests.helpers import free_port, wait_until_sync
from worker import worker_activities

TIMEOUT = 10.0


class Running:
    """An activity running in its own thread and ActivityEnvironment, until it returns or
    raises."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.env = ActivityEnvironment()
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = self.env.run(fn)
        except BaseException as err:
            self.error = err

    def join(self) -> None:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the activity did not stop"


_lock = threading.Lock()


def _holds_a_lock_when_cancelled(holding: threading.Event, go_on: threading.Event) -> Any:
    """As logging.Handler.handle does: acquire, work, release, with no `try` in between; then
    wait for the next poll, where a cancelled wait stops."""
    _lock.acquire()
    holding.set()
    go_on.wait(TIMEOUT)
    _lock.release()
    sleep_until_next_poll(3600)


@pytest.mark.parametrize(
    "declare, lock_left_held", [(sync_activity, False), (activity.defn, True)], ids=["ours", "sdk"]
)
def test_a_cancellation_while_a_lock_is_held_lands_after_it_is_released(declare, lock_left_held):
    """Ours: the lock is released and the activity stops at its wait. The SDK's default (the
    contrast that motivates the rule): CancelledError lands inside, the lock stays held."""
    holding, go_on = threading.Event(), threading.Event()

    def body() -> Any:
        return _holds_a_lock_when_cancelled(holding, go_on)

    running = Running(declare(body))
    try:
        assert holding.wait(TIMEOUT)
        running.env.cancel()
        go_on.set()
        running.join()
        assert isinstance(running.error, CancelledError)
        assert _lock.locked() is lock_left_held
    finally:
        if _lock.locked():
            _lock.release()


def _queued(budget: CallBudget) -> Callable[[], Any]:
    @sync_activity
    def call() -> Any:
        budget.acquire(event_name="before-send.ecs.DescribeServices")
        return "granted"

    return call


@pytest.mark.usefixtures("quick_check_ins")
def test_a_cancelled_caller_leaves_the_budgets_line_and_those_behind_it_go():
    budget = CallBudget(10, while_waiting=keep_alive)
    budget.set_rate(0)  # held: as behind a queue of other deployments' calls
    first = Running(_queued(budget))
    wait_until_sync(lambda: budget.waiting == 1, timeout=TIMEOUT)
    behind = Running(_queued(budget))
    wait_until_sync(lambda: budget.waiting == 2, timeout=TIMEOUT)
    first.env.cancel()
    first.join()  # at its next check-in, a CallBudget.CHECK_IN_SECONDS at most
    assert isinstance(first.error, CancelledError) and budget.waiting == 1
    budget.set_rate(10)
    behind.join()
    assert behind.error is None and behind.result == "granted" and budget.waiting == 0


class BudgetedClient:
    """DescribeServices behind a CallBudget, as botocore's before-send hook puts it."""

    class meta:  # noqa: N801 (botocore's attribute name)
        region_name = "us-west-2"

    def __init__(self, budget: CallBudget) -> None:
        self.budget = budget
        self.calls: list[list[str]] = []

    def describe_services(
        self, cluster: str, services: list[str], include: list[str]
    ) -> dict[str, Any]:
        self.budget.acquire(event_name="before-send.ecs.DescribeServices")
        self.calls.append(list(services))
        return {"services": [{"serviceName": name, "status": "ACTIVE"} for name in services]}


def _held_describer() -> tuple[CallBudget, ServiceDescriber, BudgetedClient]:
    """A describer whose calls are held in the budget until a test sets a rate."""
    budget = CallBudget(10, while_waiting=keep_alive)
    budget.set_rate(0)
    # A window long enough for every member to join (the worker's is 0.05 s).
    describer = ServiceDescriber(window_seconds=1.0, while_waiting=keep_alive)
    return budget, describer, BudgetedClient(budget)


def _describing(describer: ServiceDescriber, client: Any, service: str) -> Callable[[], Any]:
    @sync_activity
    def describe() -> Any:
        return describer.describe(client, "cluster", service)

    return describe


@pytest.mark.usefixtures("quick_check_ins")
def test_a_describe_batch_whose_leader_is_cancelled_is_led_again_by_a_member():
    budget, describer, client = _held_describer()
    describing = functools.partial(_describing, describer, client)
    leader = Running(describing("a"))
    wait_until_sync(lambda: describer.joining == 1, timeout=TIMEOUT)
    member = Running(describing("b"))
    wait_until_sync(lambda: describer.joining == 2, timeout=TIMEOUT)
    wait_until_sync(lambda: budget.waiting == 1, timeout=TIMEOUT)  # the batch's call, queued
    leader.env.cancel()
    leader.join()
    assert isinstance(leader.error, CancelledError)
    wait_until_sync(lambda: budget.waiting == 1, timeout=TIMEOUT)  # the member leads anew
    budget.set_rate(10)
    member.join()
    assert member.error is None and member.result["serviceName"] == "b"
    assert client.calls == [["b"]]


def test_a_cancelled_activity_sends_no_further_aws_request(monkeypatch: pytest.MonkeyPatch):
    """The endpoint is a port nothing listens on: a request that left would fail to connect
    (EndpointConnectionError) instead of stopping with CancelledError."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients = AwsClients(10, before_request=stop_before_request)

    @sync_activity
    def describe_alarms() -> Any:
        return clients.cloudwatch("us-east-1").describe_alarms()

    env = ActivityEnvironment()
    env.cancel()
    with pytest.raises(CancelledError):
        env.run(describe_alarms)
    stop_before_request()  # outside an activity: nothing to stop


@pytest.mark.usefixtures("quick_check_ins")
def test_a_cancelled_member_leaves_its_describe_batch_and_the_others_get_their_answers():
    budget, describer, client = _held_describer()
    describing = functools.partial(_describing, describer, client)
    leader = Running(describing("a"))
    wait_until_sync(lambda: describer.joining == 1, timeout=TIMEOUT)
    member, other = Running(describing("b")), Running(describing("c"))
    wait_until_sync(lambda: describer.joining == 3, timeout=TIMEOUT)
    wait_until_sync(lambda: budget.waiting == 1, timeout=TIMEOUT)  # the batch's call, queued
    member.env.cancel()
    member.join()  # at its next check-in
    assert isinstance(member.error, CancelledError)
    budget.set_rate(10)
    leader.join()
    other.join()
    assert (leader.result["serviceName"], other.result["serviceName"]) == ("a", "c")
    assert client.calls == [["a", "b", "c"]]


def test_clean_up_owed_after_a_cancellation_runs_through_the_cancellation_points():
    stopped: list[str] = []

    @sync_activity
    def step() -> None:
        try:
            raise_if_cancelled()
        except CancelledError:
            with cleaning_up():
                keep_alive()  # e.g. a StopTask queued for the budget
                stopped.append("task")
            raise

    env = ActivityEnvironment()
    env.cancel()
    with pytest.raises(CancelledError):
        env.run(step)
    assert stopped == ["task"]


def test_the_worker_refuses_a_sync_activity_the_sdk_may_cancel_anywhere():
    @activity.defn
    def plain() -> None: ...

    @activity.defn
    async def awaiting() -> None: ...

    check_cancelled_only_where_chosen([sync_activity(lambda: None), awaiting])
    with pytest.raises(TypeError, match="activity plain is sync: declare it with"):
        check_cancelled_only_where_chosen([plain])


def test_every_sync_activity_of_the_worker_is_cancelled_only_where_it_chooses():
    activities = worker_activities(AwsClients(10))  # raises otherwise
    definitions = [activity._Definition.must_from_callable(fn) for fn in activities]
    sync = [d.name for d in definitions if not d.is_async]
    assert "wait_for_steady_state" in sync and "run_task_step" in sync
    assert all(d.no_thread_cancel_exception for d in definitions if not d.is_async)
