"""ECS API economy built into the worker: one call budget for all activities, and concurrent
waits on one cluster sharing DescribeServices calls."""

from __future__ import annotations

import threading
import time

import boto3

from activities.aws import DESCRIBE_SERVICES_BATCH, CallBudget, ServiceDescriber
from tests.support import existing_service


def test_the_budget_never_grants_more_than_its_rate_in_any_window():
    budget = CallBudget(calls_per_second=5)
    granted: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        budget.acquire()
        with lock:
            granted.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    granted.sort()
    for index, start in enumerate(granted):
        in_window = [t for t in granted[index:] if t < start + 1.0]
        assert len(in_window) <= 5


def test_concurrent_waits_share_describe_services_calls(requests, ecs, emulator):
    services = [f"svc{n}" for n in range(DESCRIBE_SERVICES_BATCH)]
    for name in services:
        existing_service(ecs, requests, service=name, desired=1)
    client = boto3.client("ecs", region_name="us-east-1")
    describer = ServiceDescriber(window_seconds=0.2)
    emulator.admin.reset_calls()
    found: dict[str, dict] = {}
    barrier = threading.Barrier(len(services))

    def poll(name: str) -> None:
        barrier.wait()
        found[name] = describer.describe(client, "ecs-canary", name)

    threads = [threading.Thread(target=poll, args=(name,)) for name in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {name: s["serviceName"] for name, s in found.items()} == {n: n for n in services}
    assert emulator.admin.calls()["by_operation"]["DescribeServices"] == 1
