"""The worker's watchdog (ecs_canary.watchdog) on a real event loop blocked on purpose: it
measures how late the loop answers, and gives up on a loop that does not answer in time. Its
shutdown deadline ends a process whose shutdown never returns, and only that one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

from ecs_canary.watchdog import LATE_SECONDS, STALLED_EXIT_CODE, LoopWatchdog
from tests.helpers import ROOT, LogCapture, wait_until


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


SHUTDOWN = """
import sys, threading
from ecs_canary.watchdog import ShutdownDeadline
deadline = ShutdownDeadline(0.1, margin_seconds=0.3).start()
if sys.argv[1] == "finishes":
    deadline.cancel()
    threading.Event().wait(1.0)  # past the deadline: a cancelled one stays quiet
    sys.exit(0)
threading.Event().wait()  # a shutdown that never returns
"""


def _shutting_down(how: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SHUTDOWN, how],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_a_shutdown_past_its_deadline_ends_the_worker_with_every_stack():
    stuck = _shutting_down("hangs")
    assert stuck.returncode == STALLED_EXIT_CODE
    assert stuck.stderr.startswith("worker: the shutdown did not finish within 0.5s")
    assert "Current thread" in stuck.stderr or "Thread 0x" in stuck.stderr


def test_a_shutdown_that_finishes_in_time_exits_as_it_chose():
    finished = _shutting_down("finishes")
    assert (finished.returncode, finished.stderr) == (0, "")
