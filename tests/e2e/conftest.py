"""End-to-end fixtures: the ECS emulator (in this process, on a free port), a real Temporal
dev server from the installed `temporal` binary, and a worker on a per-test task queue. Under
pytest-xdist each worker process starts its own emulator and dev server (tests/conftest.py).

Every run a test starts on its task queue is accounted for when the test ends (`runs`): runs
still open are terminated, and every closed run on the queue is replayed on today's workflow
code, so a change that breaks determinism fails the test that finished the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ecs_canary import search_attributes
from ecs_canary.names import TASK_QUEUE
from ecs_canary.temporal import DATA_CONVERTER
from ecs_emulator import EmulatorSettings, start_emulator
from tests.helpers import (
    BIN,
    CLUSTER,
    REGION,
    SERVER_START_TIMEOUT,
    START_SECONDS,
    STOP_SECONDS,
    RequestFactory,
    Runs,
    Starter,
    free_port,
    in_process_worker,
    known_speeds,
    metrics_worker,
)
from tests.helpers.load_balancers import fast_health_checks as health_checks_at


@pytest.fixture(scope="session")
def emulator() -> Iterator[Any]:
    emu = start_emulator(
        EmulatorSettings(
            host="127.0.0.1",
            port=0,
            task_start_seconds=START_SECONDS,
            task_stop_seconds=STOP_SECONDS,
            throttle_rate=0.0,
            region=REGION,
            cluster=CLUSTER,
            tick_seconds=0.05,
            traffic_rps=0.0,
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
    """A clean emulator at test speed for each test; returns its seed (cluster, subnets,
    security group)."""
    known_speeds(emulator)
    return emulator.admin.reset()


@pytest.fixture
def ecs(ecs_state: dict[str, Any]) -> Any:
    return boto3.client("ecs", region_name=REGION)


@pytest.fixture
def cloudwatch(ecs_state: dict[str, Any]) -> Any:
    return boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def elbv2(ecs_state: dict[str, Any]) -> Any:
    return boto3.client("elbv2", region_name=REGION)


@pytest.fixture
def fast_health_checks(emulator: Any, ecs_state: dict[str, Any]) -> Iterator[None]:
    """The emulator's ELB health checks at test speed for one test (`pytestmark =
    pytest.mark.usefixtures("fast_health_checks")` in a module of load-balanced services)."""
    with health_checks_at(emulator):
        yield


@pytest.fixture
def requests(ecs_state: dict[str, Any]) -> RequestFactory:
    return RequestFactory(ecs_state)


@pytest.fixture(scope="session")
def ui_port() -> int:
    return free_port()


async def _dev_server(ui_port: int) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=search_attributes.ALL,
        ui=True,
        ui_port=ui_port,
        dev_server_log_level="error",
        dev_server_startup_timeout=SERVER_START_TIMEOUT,
    )


@pytest.fixture(scope="session")
async def temporal_env(ui_port: int) -> AsyncIterator[WorkflowEnvironment]:
    """One dev server per test process. It picks its other ports at random and binds them a
    moment later, while the other test processes start theirs: one taken meanwhile makes it
    panic before it serves, and it is started once more (as `make up` does)."""
    try:
        env = await _dev_server(ui_port)
    except Exception:  # noqa: BLE001 - the first start's failure; a second one is raised
        env = await _dev_server(ui_port)
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"{TASK_QUEUE}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def runs(client: Client, task_queue: str) -> AsyncIterator[Runs]:
    """The runs this test starts; at its end open ones are terminated (so ids can be reused)
    and every closed run on its task queue must replay on today's workflow code."""
    tracked = Runs(client, task_queue)
    yield tracked
    await tracked.finish()


@pytest.fixture
def deploy(runs: Runs) -> Callable[..., Awaitable[WorkflowHandle]]:
    """Start a deployment on this test's task queue: `await deploy(request, workflow_id=None)`."""
    return runs.start


@pytest.fixture
async def worker(
    client: Client, task_queue: str, ecs_state: dict[str, Any], runs: Runs
) -> AsyncIterator[Worker]:
    """The real worker on this test's task queue. It depends on `runs`, so it stops before
    `runs` replays the finished runs: none of them is still being worked on."""
    async with in_process_worker(client, task_queue) as running:
        yield running


@pytest.fixture
def metrics_url(
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    ecs_state: dict[str, Any],
    runs: Runs,
    tmp_path: Path,
) -> Iterator[str]:
    """`python worker.py --metrics-port N` on this test's task queue (stopped before `runs`
    replays the finished runs); its `/metrics` URL."""
    address = temporal_env.client.service_client.config.target_host
    with metrics_worker(address, task_queue, tmp_path / "worker.log") as url:
        yield url


@pytest.fixture
async def starter(
    temporal_env: WorkflowEnvironment, task_queue: str, emulator: Any, tmp_path: Path, ui_port: int
) -> AsyncIterator[Starter]:
    """`python starter.py ...` against the test server (and its Web UI), on this test's queue."""
    address = temporal_env.client.service_client.config.target_host
    processes = Starter(address, task_queue, tmp_path, ui_port)
    yield processes
    await processes.kill_all()
