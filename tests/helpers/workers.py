"""The worker, two ways: in this process (on the test's event loop) and as `python worker.py`
in a process of its own that a test may kill."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.aws import AwsClients
from ecs_canary.config import WorkerSettings
from tests.helpers.processes import ROOT, stop
from worker import WORKFLOWS, aws_clients, build_worker


def worker_settings(task_queue: str, **changes: Any) -> WorkerSettings:
    """Settings for a test's worker: its own task queue, no ECS call budget to speak of."""
    fields = {
        "max_concurrent_activities": 50,
        "graceful_shutdown_seconds": 1,
        "ecs_calls_per_second": 200,
        **changes,
    }
    return WorkerSettings(task_queue=task_queue, **fields)


@asynccontextmanager
async def in_process_worker(
    client: Client, task_queue: str, workflows: list[type] = WORKFLOWS, **changes: Any
) -> AsyncIterator[Worker]:
    """The real worker (`worker.build_worker`) polling `task_queue` until the block ends;
    `workflows`: another build's workflow code, `changes`: other settings (e.g. `version`)."""
    settings = worker_settings(task_queue, **changes)
    clients = session_clients(settings)
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        async with build_worker(client, settings, executor, clients, workflows) as running:
            yield running


def session_clients(settings: WorkerSettings) -> AwsClients:
    """The worker's AWS clients (`worker.aws_clients`), made once per test session (and
    settings) however many tests build a worker, as a worker process keeps one for every run it
    works on. Made anew for each test, their boto3 session (its endpoints and service models
    read from JSON) took a third of the CPU of a typical end-to-end test."""
    return _clients(dataclasses.replace(settings, task_queue="", version=None))


@functools.cache
def _clients(settings: WorkerSettings) -> AwsClients:
    return aws_clients(settings)


def spawn_worker(
    address: str,
    task_queue: str,
    log_path: Path,
    program: tuple[str, ...] = ("worker.py",),
    **settings: str,
) -> subprocess.Popen:
    """`python worker.py` as users run it, configured only through the environment (`settings`:
    more variables, e.g. ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND="30"); `program`: what python
    runs instead (e.g. `-c` code that wraps worker.main)."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "LOG_FORMAT": "json",
        "ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS": "1",
        **settings,
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, *program], cwd=ROOT, env=env, stdout=log, stderr=log
        )


@contextmanager
def worker_process(
    address: str, task_queue: str, log_path: Path, **settings: str
) -> Iterator[subprocess.Popen]:
    """A spawned worker that is stopped (SIGTERM) when the block ends, however it ends."""
    process = spawn_worker(address, task_queue, log_path, **settings)
    try:
        yield process
    finally:
        stop(process)
