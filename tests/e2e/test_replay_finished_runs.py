"""The replay that every finished run of an end-to-end test goes through (the `runs` fixture's
teardown) catches nondeterminism: given a workflow whose `run` issues other commands than the
history holds, it fails and names the run; given today's workflow, it passes."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio import workflow

from ecs_canary.names import WORKFLOW_TYPE
from tests.helpers import existing_service, replay_histories


@workflow.defn(name=WORKFLOW_TYPE, sandboxed=False)
class TimerFirstDeployment:
    """What a careless change would ship: a timer where the history's first commands are the
    ones today's workflow issues."""

    @workflow.run
    async def run(self, request: Any) -> None:
        await workflow.sleep(1)


async def test_a_changed_workflow_fails_the_replay_of_a_finished_run(worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    handle = await deploy(requests.raw(verification={"timeout_seconds": 1}))
    assert (await handle.result()).outcome == "rejected"
    history = await handle.fetch_history()

    with pytest.raises(AssertionError) as caught:
        await replay_histories([history], workflows=[TimerFirstDeployment])
    assert handle.result_run_id in str(caught.value)
    assert "Nondeterminism" in str(caught.value)
    assert await replay_histories([history]) == 1
