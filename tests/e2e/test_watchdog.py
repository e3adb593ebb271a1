"""A worker whose event loop stops answering writes every thread's stack to its log and exits
non-zero (ecs_canary.watchdog), so that its supervisor restarts it: `python -c` runs the real
worker.main with its loop blocked on purpose a moment after it connected and was watched."""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client

from ecs_canary.watchdog import STALLED_EXIT_CODE
from tests.helpers import wait_until
from tests.helpers.processes import stop
from tests.helpers.workers import spawn_worker

BLOCKED_WORKER = """
import asyncio, time
import worker

def block_the_event_loop_on_purpose():
    time.sleep(3600)

serve_watched = worker.run_worker

async def run_worker_then_block(client, settings):
    # Once the worker is connected and watched: a second later its loop stops answering.
    asyncio.get_running_loop().call_later(1, block_the_event_loop_on_purpose)
    await serve_watched(client, settings)

worker.run_worker = run_worker_then_block
asyncio.run(worker.main())
"""


async def test_a_worker_whose_event_loop_stops_answering_dumps_its_stacks_and_exits(
    client: Client, task_queue: str, tmp_path: Path
):
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    process = spawn_worker(
        address, task_queue, log, ("-c", BLOCKED_WORKER), ECS_CANARY_WATCHDOG_SECONDS="2"
    )
    try:
        await wait_until(lambda: process.poll() is not None, timeout=60)
    finally:
        await asyncio.to_thread(stop, process)
    output = log.read_text()
    assert process.returncode == STALLED_EXIT_CODE, output
    assert "the event loop did not answer for 2s (ECS_CANARY_WATCHDOG_SECONDS)" in output
    assert "Thread 0x" in output and "block_the_event_loop_on_purpose" in output
