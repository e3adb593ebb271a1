"""A workflow task lost after its CreateService was sent, then a cancel: the attempt that takes
over starts again from the last completed task, without the results of the local activities the
lost one ran, and the cancel reaches it before it gets back to the CreateService. On `make
bench`'s cancellation measure the task timed out (a worker busy past the workflow task timeout);
here it fails, which loses it the same way.

On the dev server, not the time-skipping one: the cancelled attempt upserts the deployment's
search attributes before it has learnt that the test server lacks them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ecs_canary import search_attributes
from ecs_canary.models import CreateServiceInput, DeploymentResult, Outcome
from ecs_canary.names import WORKFLOW_TYPE, workflow_id_for
from ecs_canary.temporal import DATA_CONVERTER
from tests.helpers import replayer, wait_until
from tests.helpers.processes import BIN, SERVER_START_TIMEOUT
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service
from tests.workflow.reading import failure_of, status_of
from workflows.canary import EcsCanaryDeployment


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=search_attributes.ALL,
        dev_server_log_level="error",
        dev_server_startup_timeout=SERVER_START_TIMEOUT,
    )
    yield env
    await env.shutdown()


def _with_a_lost_create(fake_ecs: FakeEcs, answer_when: asyncio.Event) -> list[Any]:
    """The fake activities, with a CreateService that creates the service and, once
    `answer_when` is set, answers its first call with what the workflow cannot read: the task
    that ran it fails, lost with its local results. Later calls answer as the fake does."""
    fakes = {activity._Definition.must_from_callable(fn).name: fn for fn in fake_ecs.activities()}
    create_service = fakes["create_service"]

    @activity.defn(name="create_service")
    async def create_service_in_a_lost_task(request: CreateServiceInput) -> Any:
        created = await create_service(request)
        if len(fake_ecs.inputs("create_service")) > 1:
            return created
        await answer_when.wait()
        return "not a ServiceChange"

    fakes["create_service"] = create_service_in_a_lost_task
    return list(fakes.values())


async def _start(
    client: Client, task_queue: str, body: dict[str, Any]
) -> WorkflowHandle[Any, DeploymentResult]:
    return await client.start_workflow(
        WORKFLOW_TYPE,
        body,
        id=f"{workflow_id_for('ecs-canary', 'myapp')}-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
        result_type=DeploymentResult,
    )


async def test_a_cancel_after_a_lost_task_that_created_the_canary_deletes_it(
    fake_ecs: FakeEcs, dev_server: WorkflowEnvironment
):
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    cancel_sent = asyncio.Event()
    activities = _with_a_lost_create(fake_ecs, answer_when=cancel_sent)
    client, task_queue = dev_server.client, f"workflow-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=[EcsCanaryDeployment], activities=activities
    ):
        handle = await _start(client, task_queue, request())
        await wait_until(lambda: "myappCanary" in fake_ecs.services, timeout=30)
        await handle.cancel()
        cancel_sent.set()
        async with asyncio.timeout(60):
            await failure_of(handle)
        final = await status_of(handle)
        replayed = await replayer().replay_workflow(await handle.fetch_history())

    assert final.outcome == Outcome.CANCELLED
    assert [c.service for c in fake_ecs.inputs("create_service")] == ["myappCanary"]
    assert [d.service for d in fake_ecs.inputs("delete_service")] == ["myappCanary"]
    assert "myappCanary" not in fake_ecs.services
    assert final.result is not None and final.result.canary_deleted
    # A replay (a query on the closed run, an evicted run) makes the same calls.
    assert replayed.replay_failure is None


async def test_the_canary_a_lost_task_created_is_no_leftover_of_another_run(
    fake_ecs: FakeEcs, dev_server: WorkflowEnvironment
):
    """The attempt that takes over finds the canary ACTIVE, tagged with its own run: it does
    not delete it as an earlier run's leftover, and its create looks before creating (on ECS,
    the one that finds it ACTIVE with this task definition makes no second CreateService).
    The run then goes on, and deletes the canary once."""
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    answered = asyncio.Event()
    answered.set()
    activities = _with_a_lost_create(fake_ecs, answer_when=answered)
    client, task_queue = dev_server.client, f"workflow-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=[EcsCanaryDeployment], activities=activities
    ):
        # Nobody decides: the gate's timer (real time here) rejects the canary once it opens.
        handle = await _start(client, task_queue, request(verification={"timeout_seconds": 0.2}))
        async with asyncio.timeout(60):
            result = await handle.result()

    assert result.outcome == Outcome.REJECTED and result.canary_deleted
    first, second = fake_ecs.inputs("create_service")
    assert (first.may_be_repeated, second.may_be_repeated) == (False, True)
    assert [d.service for d in fake_ecs.inputs("delete_service")] == ["myappCanary"]
    assert fake_ecs.names().index("delete_service") > fake_ecs.names().index("create_service")
