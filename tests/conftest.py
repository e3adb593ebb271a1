"""Shared fixtures: the ECS emulator (in this process, on a free port), a real Temporal dev
server from the installed `temporal` binary, and a worker on a per-test task queue."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ecs_canary import search_attributes
from ecs_canary.config import WorkerSettings
from ecs_canary.logs import configure_logging
from ecs_emulator import EmulatorSettings, start_emulator
from tests.processes import free_port
from tests.support import LogCapture, RequestFactory, start
from worker import build_worker

BIN = Path(sys.executable).parent
REGION = "us-east-1"


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    capture.attach()
    yield capture
    capture.detach()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    emu = start_emulator(
        EmulatorSettings(
            host="127.0.0.1",
            port=0,
            task_start_seconds=0.3,
            task_stop_seconds=0.2,
            throttle_rate=0.0,
            region=REGION,
            cluster="ecs-canary",
            tick_seconds=0.05,
        )
    )
    # boto3's own settings reach the emulator: the code under test has no knobs for it.
    os.environ.update(
        AWS_ENDPOINT_URL=emu.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
    )
    os.environ.pop("AWS_PROFILE", None)
    yield emu
    emu.stop()


@pytest.fixture
def ecs_state(emulator: Any) -> dict[str, Any]:
    """A clean emulator for each test; returns its seed (cluster, subnets, security group)."""
    return emulator.admin.reset()


@pytest.fixture
def ecs(ecs_state: dict[str, Any]) -> Any:
    return boto3.client("ecs", region_name=REGION)


@pytest.fixture
def cloudwatch(ecs_state: dict[str, Any]) -> Any:
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def requests(ecs_state: dict[str, Any]) -> RequestFactory:
    return RequestFactory(ecs_state)


@pytest.fixture(scope="session")
def ui_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
async def temporal_env(ui_port: int) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=search_attributes.ALL,
        ui=True,
        ui_port=ui_port,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"ecs-deployments-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def worker(client: Client, task_queue: str, ecs_state: dict[str, Any]) -> AsyncIterator[Any]:
    settings = WorkerSettings(
        task_queue=task_queue,
        max_concurrent_activities=50,
        graceful_shutdown_seconds=1,
        ecs_calls_per_second=200,
    )
    with ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        running = build_worker(client, settings, executor)
        async with running:
            yield running


@pytest.fixture
async def started(client: Client) -> AsyncIterator[list[WorkflowHandle]]:
    """Handles a test starts; any still open at the end are terminated so ids can be reused."""
    handles: list[WorkflowHandle] = []
    yield handles
    for handle in handles:
        description = await handle.describe()
        if description.status is not None and description.status.name == "RUNNING":
            await handle.terminate("test finished")


@pytest.fixture
def deploy(
    client: Client, task_queue: str, started: list[WorkflowHandle]
) -> Callable[..., Awaitable[WorkflowHandle]]:
    """Start a deployment on this test's task queue; it is terminated at the end if still open."""

    async def deploy_(request: Any, workflow_id: str | None = None) -> WorkflowHandle:
        handle = await start(client, task_queue, request, workflow_id)
        started.append(handle)
        return handle

    return deploy_
