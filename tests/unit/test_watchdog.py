"""The worker's watchdog (ecs_canary.watchdog) on a real event loop blocked on purpose: it
measures how late the loop answers, and gives up on a loop that does not answer in time."""

from __future__ import annotations

import asyncio
import threading
import time

from ecs_canary.watchdog import LoopWatchdog


async def test_the_longest_stall_is_measured():
    watchdog = LoopWatchdog(asyncio.get_running_loop(), timeout_seconds=30, ping_seconds=0.01)
    watchdog.start()
    try:
        while watchdog.pings < 3:
            await asyncio.sleep(0.01)
        time.sleep(0.3)  # blocks the loop: the ping sent meanwhile is answered late
        pings = watchdog.pings
        while watchdog.pings == pings:
            await asyncio.sleep(0.01)
    finally:
        watchdog.stop()
    assert 0.2 <= watchdog.longest_stall_seconds < 30


async def test_a_loop_that_does_not_answer_in_time_is_given_up_on():
    stalled: list[float] = []
    given_up = threading.Event()

    def on_stall(timeout: float) -> None:
        stalled.append(timeout)
        given_up.set()

    watchdog = LoopWatchdog(
        asyncio.get_running_loop(), timeout_seconds=0.2, on_stall=on_stall, ping_seconds=0.01
    )
    watchdog.start()
    try:
        assert given_up.wait(10)  # blocks the loop until the watchdog gives up on it
    finally:
        watchdog.stop()
    assert stalled == [0.2] and watchdog.longest_stall_seconds >= 0.2
