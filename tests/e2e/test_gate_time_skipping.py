"""A gate that waits for hours, decided by `on_timeout`: Temporal's time-skipping test server
skips the durable timer while the canary itself runs in the emulator in real time. The test
server has none of the custom search attributes registered, so this also shows a deployment
running on a namespace that lacks them."""

from __future__ import annotations

import pytest

from tests.helpers import (
    describe,
    existing_service,
    in_process_worker,
    replay_histories,
    start,
    start_time_skipping,
)


@pytest.mark.parametrize("on_timeout", ["reject", "approve"])
async def test_a_six_hour_gate_is_decided_by_on_timeout(on_timeout, task_queue, requests, ecs):
    old_arn = existing_service(ecs, requests)
    async with await start_time_skipping() as env:
        async with in_process_worker(env.client, task_queue, max_concurrent_activities=20):
            request = requests.raw(
                verification={"timeout_seconds": 6 * 3600, "on_timeout": on_timeout}
            )
            handle = await start(env.client, task_queue, request)
            result = await handle.result()
        # The finished run replays on today's code (no fixture knows this server).
        assert await replay_histories([await handle.fetch_history()]) == 1

    assert result.decision.via == "timeout" and result.decision.action == on_timeout
    main = describe(ecs, "myapp")
    if on_timeout == "reject":
        assert result.outcome == "rejected" and main["taskDefinition"] == old_arn
    else:
        assert result.outcome == "succeeded"
        assert main["taskDefinition"] == result.task_definition_arn
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
