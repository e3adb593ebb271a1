"""A local activity that outlasts its workflow task (a loaded worker, a slow policy file): the
SDK completes the task meanwhile with the commands it holds, and the history must still
replay.

Seen once in `make test` (a nondeterminism error on a query): with verification alarms and
nothing to wait for, the run started the alarm watch, checked the policy (`refresh_policy`, a
local activity) and approved on the bake, cancelling the watch. When the task was completed
with the watch's start and the check's marker, but the check's result was handled in the next
task, the history held a start that the replay could not reproduce (there, the result comes
at once and the cancel drops the start). That moment cannot be forced from a test; this test
forces the check to outlast a task and proves the run starts no watch there (so no start and
cancel can straddle the check) and that its history replays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.decisions import verify_decision
from ecs_canary.activity_io import DecisionVerdict, VerifyDecisionInput
from ecs_canary.models import Outcome
from tests.helpers.replay import replay_histories
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service
from workflows.canary import EcsCanaryDeployment

TASK_TIMEOUT = timedelta(seconds=1)


@pytest.fixture
async def fake_worker(time_skipping: WorkflowEnvironment, fake_ecs: FakeEcs) -> AsyncIterator[str]:
    """The fake ECS activities, and a policy check that takes longer than a workflow task."""
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)

    @activity.defn(name="verify_decision")
    async def slow_verify_decision(request: VerifyDecisionInput) -> DecisionVerdict:
        await asyncio.sleep(TASK_TIMEOUT.total_seconds() * 1.5)
        verdict: DecisionVerdict = await verify_decision(request)
        return verdict

    task_queue = f"slow-local-activity-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_skipping.client,
        task_queue=task_queue,
        workflows=[EcsCanaryDeployment],
        activities=[*fake_ecs.activities(), slow_verify_decision],
    ):
        yield task_queue


async def test_an_approval_on_the_bake_after_a_slow_policy_check_replays(start, fake_ecs):
    body = request(verification={"require_approval": False, "alarms": ["myapp-5xx"]})
    handle = await start(body, task_timeout=TASK_TIMEOUT)
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    history: WorkflowHistory = await handle.fetch_history()
    heartbeats = [
        e for e in history.events if e.HasField("workflow_task_completed_event_attributes")
    ]
    assert len(heartbeats) > 1  # the policy check outlasted a workflow task
    assert await replay_histories([history], [EcsCanaryDeployment]) == 1
    assert fake_ecs.inputs("watch_alarms") == []  # nothing to wait for: no watch
