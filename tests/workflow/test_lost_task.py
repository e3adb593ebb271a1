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

import pytest
from temporalio import activity
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


async def test_a_cancel_after_a_lost_task_that_created_the_canary_deletes_it(
    fake_ecs: FakeEcs, dev_server: WorkflowEnvironment
):
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    fakes = {activity._Definition.must_from_callable(fn).name: fn for fn in fake_ecs.activities()}
    create_service = fakes["create_service"]
    cancel_sent = asyncio.Event()

    @activity.defn(name="create_service")
    async def create_service_in_a_lost_task(request: CreateServiceInput) -> str:
        """Creates the service and answers, once the run's cancel is recorded, with what the
        workflow cannot read: the task that ran it fails, lost with its local results."""
        await create_service(request)
        await cancel_sent.wait()
        return "not a ServiceChange"

    fakes["create_service"] = create_service_in_a_lost_task
    client, task_queue = dev_server.client, f"workflow-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=task_queue, workflows=[EcsCanaryDeployment], activities=[*fakes.values()]
    ):
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            request(),
            id=f"{workflow_id_for('ecs-canary', 'myapp')}-{uuid.uuid4().hex[:6]}",
            task_queue=task_queue,
            result_type=DeploymentResult,
        )
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
