"""A worker's shutdown is bounded (ecs_canary.watchdog.ShutdownDeadline). SIGTERM reaches a
`python worker.py` while its canary wait is stuck in a DescribeServices call the emulator holds:
the activity's cancellation cannot reach a thread blocked on a socket, and the SDK's shutdown
waits for it (the call's 30 s read timeout, then botocore's retries). The worker exits at its
deadline instead, with every thread's stack and STALLED_EXIT_CODE, for its supervisor to
restart; a killed worker loses nothing (test_durability)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ecs_canary.watchdog import STALLED_EXIT_CODE, ShutdownDeadline
from tests.helpers import activity_running, existing_service, wait_until, worker_process

pytestmark = pytest.mark.slow

GRACEFUL_SECONDS = 1.0  # spawn_worker's ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS


async def test_a_shutdown_held_by_a_stuck_ecs_call_ends_at_its_deadline(
    client, task_queue, requests, ecs, emulator, tmp_path, deploy
):
    existing_service(ecs, requests)
    emulator.admin.settings(task_start_seconds=3)  # the canary's wait is still polling
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    deadline = ShutdownDeadline(GRACEFUL_SECONDS).seconds
    with worker_process(address, task_queue, log) as worker:
        handle = await deploy(requests.raw())
        await wait_until(lambda: activity_running(handle, "wait_for_steady_state"), timeout=60)
        with emulator.hold("DescribeServices"):
            emulator.admin.reset_calls()

            def held() -> bool:
                return emulator.admin.calls()["by_operation"].get("DescribeServices", 0) > 0

            await wait_until(held, timeout=30)
            asked = time.monotonic()
            worker.terminate()
            code = await asyncio.to_thread(worker.wait, 3 * deadline)
            took = time.monotonic() - asked

    assert code == STALLED_EXIT_CODE
    written = log.read_text()
    assert f"worker: the shutdown did not finish within {deadline:g}s" in written
    assert "wait_for_steady_state" in written or "describe" in written  # the stuck stack
    assert deadline <= took < deadline + 10  # not the held call's 30 s and more
