"""The worker's watchdog (ecs_canary.watchdog) on a real event loop blocked on purpose: it
measures how late the loop answers, and gives up on a loop that does not answer in time."""

from __future__ import annotations

import asyncio
import threading
import time

from ecs_canary.watchdog import LATE_SECONDS, LoopWatchdog
from tests.helpers import LogCapture, wait_until


async def test_the_longest_stall_is_measured_and_a_late_answer_logged(logs: LogCapture):
    watchdog = LoopWatchdog(asyncio.get_running_loop(), timeout_seconds=30, ping_seconds=0.01)
    watchdog.start()
    try:
        while watchdog.pings < 3:
            await asyncio.sleep(0.01)
        time.sleep(LATE_SECONDS + 0.2)  # blocks the loop: the ping sent meanwhile is late
        await wait_until(lambda: "Event loop answered late" in logs.lines(), timeout=10)
    finally:
        watchdog.stop()
    assert LATE_SECONDS < watchdog.longest_stall_seconds < 30
    assert logs.lines()[-1] == "Event loop stalls"  # at stop, with the longest


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


async def test_a_stop_with_a_ping_still_waiting_on_the_loop_returns_at_once():
    """`stop` runs on the loop and joins the watchdog's thread: the ping the loop has not
    answered yet must not hold the worker's exit until the timeout calls it a stall."""
    stalled: list[float] = []
    watchdog = LoopWatchdog(
        asyncio.get_running_loop(), timeout_seconds=5, on_stall=stalled.append, ping_seconds=0.01
    )
    watchdog.start()
    while watchdog.pings < 3:
        await asyncio.sleep(0.01)
    time.sleep(0.1)  # blocks the loop: a ping is sent meanwhile and waits for it
    started = time.monotonic()
    watchdog.stop()  # still without yielding to the loop

    assert time.monotonic() - started < 1
    assert stalled == []
