"""A sweep of a train's handed-over deployments on a server whose visibility cannot list them
(the time-skipping test server): `ended_deployments` describes each run instead, as it did
before listings, and finds the closed ones all the same."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.train import ended_deployments
from ecs_canary.train import DeploymentRun, EndedDeploymentsInput
from tests.helpers import start_time_skipping


@pytest.fixture
async def test_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own: run on the shared one, a later test that moves the
    clock (the train's gate timeout) stalled until pytest's timeout."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


async def test_a_server_that_cannot_list_closes_has_each_run_described(
    test_server: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    client = test_server.client
    handle = await client.start_workflow(
        "NobodyRunsThis", id=f"ended-{uuid.uuid4().hex[:6]}", task_queue="nobody-polls"
    )
    await handle.terminate("by hand")
    assert handle.result_run_id is not None
    environment = ActivityEnvironment(client=client)
    environment.info = dataclasses.replace(environment.info, workflow_id="ecs-canary-train/x")
    # A listing would find no close after this time; a describe finds the run terminated.
    asked = EndedDeploymentsInput(
        runs=[DeploymentRun(workflow_id=handle.id, run_id=handle.result_run_id)],
        wait=False,
        closed_since=datetime.now(UTC) + timedelta(hours=1),
    )
    with caplog.at_level(logging.WARNING):
        found = await environment.run(ended_deployments, asked)

    assert [end.workflow_id for end in found] == [handle.id]
    assert found[0].result is None and "terminated" in (found[0].failure or "").lower()
    assert "Listed no closes, describing each run" in caplog.text
