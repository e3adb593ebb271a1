"""ECS API economy built into the worker: one call budget for all activities, and concurrent
waits on one cluster sharing DescribeServices calls."""

from __future__ import annotations

import ctypes
import threading
from collections import deque

import boto3
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.aws import DESCRIBE_SERVICES_BATCH, AwsClients, CallBudget, ServiceDescriber
from activities.ecs import EcsActivities
from tests.helpers import (
    CLUSTER,
    REGION,
    approve_at_gate,
    canary_create_input,
    canary_wait_input,
    existing_service,
    wait_until_sync,
)


class _GrantLog(deque[float]):
    """The budget's own record of its grant times, copied as it makes them (under its lock). A
    caller's clock reading after `acquire()` returns can come a scheduling delay late, and two
    such readings less than a window apart (a CI run saw 0.997 s) prove nothing."""

    def __init__(self, granted: list[float]) -> None:
        super().__init__()
        self.granted = granted

    def append(self, granted_at: float) -> None:
        self.granted.append(granted_at)
        super().append(granted_at)


def test_the_budget_never_grants_more_than_its_rate_in_any_window():
    budget = CallBudget(calls_per_second=5)
    granted: list[float] = []
    budget._granted = _GrantLog(granted)

    threads = [threading.Thread(target=budget.acquire) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 12
    granted.sort()
    for index, start in enumerate(granted):
        in_window = [t for t in granted[index:] if t < start + 1.0]
        assert len(in_window) <= 5


def _queued_order(budget: CallBudget, operations: list[str]) -> list[str]:
    """Fill the budget's window, queue the operations one after another, return the order
    in which the budget let them through."""
    for _ in range(2):
        budget.acquire(event_name="before-send.ecs.DescribeServices")
    order: list[str] = []

    def call(operation: str) -> None:
        budget.acquire(event_name=f"before-send.ecs.{operation}")
        order.append(operation)

    threads = []
    for operation in operations:
        threads.append(threading.Thread(target=call, args=(operation,)))
        threads[-1].start()
        wait_until_sync(lambda: budget.waiting == len(threads), timeout=5, every=0.01)
    for thread in threads:
        thread.join()
    return order


def test_queued_changes_go_before_queued_polls():
    budget = CallBudget(calls_per_second=2)
    order = _queued_order(budget, ["DescribeServices", "DescribeServices", "CreateService"])
    assert order == ["CreateService", "DescribeServices", "DescribeServices"]


def test_a_poll_gives_way_only_within_its_slack():
    budget = CallBudget(calls_per_second=2, read_slack_seconds=0.0)
    order = _queued_order(budget, ["DescribeServices", "UpdateService", "DescribeServices"])
    assert order == ["DescribeServices", "UpdateService", "DescribeServices"]


def test_a_rollback_target_check_gives_way_to_polls_and_changes():
    """The check runs beside the canary's wait; a poll or a change it held back would delay
    a deployment now."""
    budget = CallBudget(calls_per_second=2, read_slack_seconds=0.5, background_slack_seconds=5)
    order = _queued_order(budget, ["DescribeTaskDefinition", "DescribeServices", "CreateService"])
    assert order == ["CreateService", "DescribeServices", "DescribeTaskDefinition"]


def _cancel(thread: threading.Thread) -> None:
    """What Temporal does to a cancelled sync activity: CancelledError raised in its thread."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(CancelledError)
    )


def test_a_request_cancelled_in_line_leaves_it():
    """Temporal cancels a sync activity by raising CancelledError in its thread, wherever it
    is; one waiting for the budget must not hold up those queued behind it."""
    budget = CallBudget(calls_per_second=1)
    budget.acquire(event_name="before-send.ecs.DescribeServices")
    outcome: list[BaseException] = []

    def cancelled_caller() -> None:
        try:
            budget.acquire(event_name="before-send.ecs.CreateService")
        except CancelledError as err:
            outcome.append(err)

    caller = threading.Thread(target=cancelled_caller)
    caller.start()
    wait_until_sync(lambda: budget.waiting == 1, timeout=5, every=0.01)
    _cancel(caller)
    caller.join(timeout=5)

    assert outcome and budget.waiting == 0
    budget.acquire(event_name="before-send.ecs.DescribeServices")  # the line still moves


def test_concurrent_waits_share_describe_services_calls(requests, ecs, emulator):
    services = [f"svc{n}" for n in range(DESCRIBE_SERVICES_BATCH)]
    for name in services:
        existing_service(ecs, requests, service=name, desired=1)
    client = boto3.client("ecs", region_name=REGION)
    describer = ServiceDescriber(window_seconds=0.2)
    emulator.admin.reset_calls()
    found: dict[str, dict] = {}
    barrier = threading.Barrier(len(services))

    def poll(name: str) -> None:
        barrier.wait()
        found[name] = describer.describe(client, CLUSTER, name)

    threads = [threading.Thread(target=poll, args=(name,)) for name in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {name: s["serviceName"] for name, s in found.items()} == {n: n for n in services}
    assert emulator.admin.calls()["by_operation"]["DescribeServices"] == 1


def test_a_wait_looks_first_one_interval_after_the_change(requests, ecs, emulator):
    """Nothing ECS does settles within a poll interval of a create, so the wait's first look
    comes a whole interval later: here the canary runs after 0.3 s, and a wait with a 1 s
    interval sees it steady with its first and only DescribeServices."""
    activities = EcsActivities(AwsClients(ecs_calls_per_second=100))
    create = canary_create_input(requests, ecs)
    env = ActivityEnvironment()
    change = env.run(activities.create_service, create)
    emulator.admin.reset_calls()

    steady = env.run(
        activities.wait_for_steady_state,
        canary_wait_input(
            create,
            poll_interval_seconds=1.0,
            timeout_seconds=30,
            events_since=change.deployment_created_at,
        ),
    )

    assert (steady.running_count, steady.desired_count) == (1, 1)
    assert emulator.admin.calls()["by_operation"] == {"DescribeServices": 1}


def test_a_batch_whose_leader_is_cancelled_still_answers_the_others(requests, ecs, emulator):
    existing_service(ecs, requests, service="svc0", desired=1)
    existing_service(ecs, requests, service="svc1", desired=1)
    client = boto3.client("ecs", region_name=REGION)
    describer = ServiceDescriber(window_seconds=2.0)
    found: dict[str, object] = {}

    def look_up(name: str) -> None:
        try:
            found[name] = describer.describe(client, CLUSTER, name)["serviceName"]
        except CancelledError as err:
            found[name] = err

    leader = threading.Thread(target=look_up, args=("svc0",))
    leader.start()
    wait_until_sync(lambda: describer.joining == 1, timeout=5, every=0.01)
    member = threading.Thread(target=look_up, args=("svc1",))
    member.start()
    wait_until_sync(lambda: describer.joining == 2, timeout=5, every=0.01)
    _cancel(leader)
    leader.join(timeout=10)
    member.join(timeout=10)

    assert isinstance(found["svc0"], CancelledError)
    assert found["svc1"] == "svc1"


def _simultaneous_calls(clients: AwsClients, callers: int) -> None:
    client = clients.ecs(REGION)
    barrier = threading.Barrier(callers)

    def call() -> None:
        barrier.wait()
        client.list_clusters()

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _pool_overflows(logs) -> int:
    return sum("Connection pool is full" in line for line in logs.lines())


# A budget whose spacing between calls (a window over the rate) is a microsecond: the calls
# really are simultaneous.
UNLIMITED = 1_000_000


def test_simultaneous_calls_keep_their_connections_open(ecs_state, logs):
    """Every activity that may call ECS at once has a pooled connection: with botocore's
    default pool of 10, most calls of a busy worker opened a new connection (against AWS a new
    TLS handshake) and urllib3 logged each one it had to throw away."""
    callers = 40
    _simultaneous_calls(AwsClients(ecs_calls_per_second=UNLIMITED, max_connections=10), callers)
    assert _pool_overflows(logs) > 0  # the default is too small for this many at once

    logs.records.clear()
    _simultaneous_calls(
        AwsClients(ecs_calls_per_second=UNLIMITED, max_connections=callers), callers
    )
    assert _pool_overflows(logs) == 0


async def test_a_deployment_reads_before_a_change_only_when_it_may_repeat_one(
    worker, requests, ecs, emulator, deploy
):
    """Each change is one call; the only DescribeTaskDefinition checks the rollback target.
    (Reads that find an earlier attempt's change are for retries and taken-over runs.)"""
    existing_service(ecs, requests)
    emulator.admin.reset_calls()
    handle = await deploy(requests.raw())
    assert (await approve_at_gate(handle)).outcome == "succeeded"

    calls = emulator.admin.calls()["by_operation"]
    changes_and_definition_reads = {
        name: count for name, count in calls.items() if name != "DescribeServices"
    }
    assert changes_and_definition_reads == {
        "RegisterTaskDefinition": 1,
        "DescribeTaskDefinition": 1,
        "CreateService": 1,
        "DeleteService": 1,
        "UpdateService": 1,
    }
