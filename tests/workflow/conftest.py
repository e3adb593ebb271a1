"""The workflow layer: the real workflow on Temporal's time-skipping test server, with the
activities replaced by `fakes.FakeEcs` (registered under the real activities' names)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.decisions import verify_decision
from ecs_canary.models import DeploymentResult
from ecs_canary.names import WORKFLOW_TYPE, workflow_id_for
from tests.helpers import start_time_skipping
from tests.workflow.fake_analysis import FakeJudge
from tests.workflow.fake_check import FakeCheck
from tests.workflow.fakes import FakeEcs
from workflows.canary import EcsCanaryDeployment


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "abandons_activity: the workflow closes while a (fake) activity still runs; the test "
        "gets a time-skipping server of its own",
    )
    config.addinivalue_line(
        "markers",
        "own_clock: the test moves the server's clock (env.sleep), which a run another test "
        "left waiting on a queue no worker polls would stall; it gets a time-skipping server of "
        "its own",
    )


@pytest.fixture(scope="session")
async def shared_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
async def time_skipping(
    request: pytest.FixtureRequest, shared_time_skipping: WorkflowEnvironment
) -> AsyncIterator[WorkflowEnvironment]:
    """The session's server, except for tests marked `abandons_activity` or `own_clock`. An
    activity that completes after its workflow closed ("Activity not found on completion")
    leaves the test server's time-skipping lock held for good: every later `sleep` would take
    real time."""
    if not any(request.node.get_closest_marker(m) for m in ("abandons_activity", "own_clock")):
        yield shared_time_skipping
        return
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture
def fake_ecs() -> FakeEcs:
    return FakeEcs()


@pytest.fixture
def fake_judge() -> FakeJudge:
    return FakeJudge()


@pytest.fixture
async def fake_worker(
    time_skipping: WorkflowEnvironment, fake_ecs: FakeEcs, fake_judge: FakeJudge
) -> AsyncIterator[str]:
    """A worker with the real workflow and the fake activities; yields its task queue."""
    task_queue = f"workflow-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(  # FakeCheck: a user's check workflow, on the same queue
        time_skipping.client,
        task_queue=task_queue,
        workflows=[EcsCanaryDeployment, FakeCheck],
        # The real token verification: pure Python, keys from ECS_CANARY_APPROVER_KEYS.
        activities=[*fake_ecs.activities(), fake_judge.activity(), verify_decision],
        max_heartbeat_throttle_interval=timedelta(seconds=0.2),
        default_heartbeat_throttle_interval=timedelta(seconds=0.2),
    ):
        yield task_queue


def request(**changes: Any) -> dict[str, Any]:
    """A valid request for `myapp` (3 tasks), with top-level sections merged from `changes`."""
    body: dict[str, Any] = {
        "cluster": "ecs-canary",
        "service_name": "myapp",
        "task_definition": {
            "family": "myapp-task",
            "containerDefinitions": [{"name": "web", "image": "nginx:1.27", "essential": True}],
        },
        "service_definition": {"desiredCount": 3, "launchType": "FARGATE"},
        "poll_interval_seconds": 1,
    }
    for key, value in changes.items():
        body[key] = {**body[key], **value} if isinstance(body.get(key), dict) else value
    return body


@pytest.fixture
def start(
    time_skipping: WorkflowEnvironment, fake_worker: str
) -> Callable[..., Awaitable[WorkflowHandle[Any, DeploymentResult]]]:
    client: Client = time_skipping.client

    async def start_(body: dict[str, Any], **options: Any) -> WorkflowHandle[Any, DeploymentResult]:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            body,
            id=f"{workflow_id_for('ecs-canary', 'myapp')}-{uuid.uuid4().hex[:6]}",
            task_queue=fake_worker,
            result_type=DeploymentResult,
            **options,
        )

    return start_
