"""A gate that waits for hours, decided by `on_timeout`: Temporal's time-skipping test server
skips the durable timer while the canary itself runs in the emulator in real time. The test
server has none of the custom search attributes registered, so this also shows a deployment
running on a namespace that lacks them."""

from __future__ import annotations

import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from ecs_canary.config import WorkerSettings
from tests.support import describe, existing_service, start
from worker import build_worker


@pytest.mark.parametrize("on_timeout", ["reject", "approve"])
async def test_a_six_hour_gate_is_decided_by_on_timeout(on_timeout, requests, ecs):
    old_arn = existing_service(ecs, requests)
    settings = WorkerSettings(
        task_queue=f"ecs-deployments-{uuid.uuid4().hex[:8]}",
        max_concurrent_activities=20,
        graceful_shutdown_seconds=1,
        ecs_calls_per_second=200,
    )
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=pydantic_data_converter,
    ) as env:
        with ThreadPoolExecutor(max_workers=20) as executor:
            async with build_worker(env.client, settings, executor):
                request = requests.raw(
                    verification={"timeout_seconds": 6 * 3600, "on_timeout": on_timeout}
                )
                handle = await start(env.client, settings.task_queue, request)
                result = await handle.result()

    assert result.decision.via == "timeout" and result.decision.action == on_timeout
    main = describe(ecs, "ecs-canary", "myapp")
    if on_timeout == "reject":
        assert result.outcome == "rejected" and main["taskDefinition"] == old_arn
    else:
        assert result.outcome == "succeeded"
        assert main["taskDefinition"] == result.task_definition_arn
    assert describe(ecs, "ecs-canary", "myappCanary")["status"] == "INACTIVE"
