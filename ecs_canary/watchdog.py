"""The worker's watchdog: a thread that pings the event loop and stops a worker whose loop no
longer answers.

A worker whose event loop is stuck (a lock that is never released, a blocking call on the
loop) polls nothing and completes nothing, yet holds its slots: every deployment on it stalls
until a person restarts it. The watchdog asks the loop to answer (`call_soon_threadsafe`) every
`PING_SECONDS`. If no answer comes within `timeout_seconds` (ECS_CANARY_WATCHDOG_SECONDS), it
writes every thread's stack to stderr (`faulthandler`, which needs no lock a stuck thread may
hold) and exits the process with `STALLED_EXIT_CODE`, so that ECS or systemd restarts it and
Temporal hands its work to the other workers.

It also measures how late each answer came: `longest_stall_seconds` is the longest, and an
answer later than `LATE_SECONDS` is logged ("Event loop answered late"), as is the longest at
`stop` ("Event loop stalls") for the benchmark and the chaos test.

`ShutdownDeadline` bounds the worker's own shutdown the same way. On SIGTERM the SDK waits for
the running activities (ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS), cancels them, and tears down
every cached run. That can hang while the loop still answers: an activity blocked in a call
that does not see its cancellation keeps the shutdown waiting, and a run whose teardown fails
is retried forever (the SDK logs "continually retrying eviction"; seen under a flood of
signals on a saturated machine). A worker that never exits holds its slots, and a supervisor
waiting for it holds its replacement back.
"""

from __future__ import annotations

import asyncio
import faulthandler
import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

import structlog

PING_SECONDS = 0.25
# The event loop should answer within this even on a saturated machine (issue 21).
LATE_SECONDS = 1.0
# EX_SOFTWARE: the worker stopped itself; a supervisor restarts it.
STALLED_EXIT_CODE = 70
# A shutdown may take twice its graceful time (the activities' wait, then their cancellation)
# and this much more for the runs' teardown before it counts as stuck.
SHUTDOWN_MARGIN_SECONDS = 10.0


def dump_stacks_and_exit(timeout_seconds: float, stream: TextIO = sys.stderr) -> None:
    """What a stalled worker does: every thread's stack, then exit at once."""
    _stacks_and_exit(
        f"worker: the event loop did not answer for {timeout_seconds:g}s "
        "(ECS_CANARY_WATCHDOG_SECONDS); every thread's stack follows, then the worker exits",
        stream,
    )


def _stacks_and_exit(message: str, stream: TextIO) -> None:
    """Written straight to the file descriptor, not through `logging`: the stuck thread may
    hold the handler's lock."""
    stream.flush()
    os.write(stream.fileno(), f"{message}\n".encode())
    faulthandler.dump_traceback(file=stream, all_threads=True)
    os._exit(STALLED_EXIT_CODE)


class ShutdownDeadline:
    """Started when the worker begins to shut down: past `seconds`, every thread's stack and
    exit with STALLED_EXIT_CODE. Nothing is lost by that exit, as after a crash: Temporal hands
    the runs' workflow tasks, and each activity at its heartbeat timeout, to the other workers."""

    def __init__(
        self,
        graceful_shutdown_seconds: float,
        stream: TextIO = sys.stderr,
        margin_seconds: float = SHUTDOWN_MARGIN_SECONDS,
    ) -> None:
        self.seconds = 2 * graceful_shutdown_seconds + margin_seconds
        self._stream = stream
        self._timer = threading.Timer(self.seconds, self._overran)
        self._timer.daemon = True

    def start(self) -> ShutdownDeadline:
        self._timer.start()
        return self

    def cancel(self) -> None:
        self._timer.cancel()

    def _overran(self) -> None:
        _stacks_and_exit(
            f"worker: the shutdown did not finish within {self.seconds:g}s (twice "
            "ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS and a margin): an activity that ignores its "
            "cancellation, or a run the SDK cannot tear down; every thread's stack follows, "
            "then the worker exits and Temporal gives its work to the other workers",
            self._stream,
        )


class LoopWatchdog:
    """Pings `loop` from a thread of its own; `on_stall` runs once if an answer takes longer
    than `timeout_seconds` (by default: stacks and exit)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout_seconds: float,
        on_stall: Callable[[float], None] = dump_stacks_and_exit,
        ping_seconds: float = PING_SECONDS,
    ) -> None:
        self._loop = loop
        self._timeout = timeout_seconds
        self._on_stall = on_stall
        self._ping = ping_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="event-loop-watchdog", daemon=True)
        self.longest_stall_seconds = 0.0
        self.pings = 0

    def start(self) -> LoopWatchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        structlog.get_logger("ecs_canary.watchdog").info(
            "Event loop stalls",
            longest_stall_seconds=round(self.longest_stall_seconds, 3),
            pings=self.pings,
        )

    def _watch(self) -> None:
        log = structlog.get_logger("ecs_canary.watchdog")
        while not self._stopped.wait(self._ping):
            answered = threading.Event()
            sent = time.monotonic()
            if not self._call_on_loop(answered.set):
                return
            if not self._answered_or_stopped(answered, sent + self._timeout):
                self.longest_stall_seconds = time.monotonic() - sent
                self._on_stall(self._timeout)
                return
            if not answered.is_set():
                return  # stopped, with this ping still waiting on the loop
            stall = time.monotonic() - sent
            self.pings += 1
            if stall > self.longest_stall_seconds:
                self.longest_stall_seconds = stall
            if stall > LATE_SECONDS:
                # Logged by the loop, never by this thread: a stuck thread may hold the log
                # handler's lock, and the watchdog must not wait for it.
                late = functools.partial(
                    log.warning,
                    "Event loop answered late",
                    stall_seconds=round(stall, 3),
                    longest_stall_seconds=round(self.longest_stall_seconds, 3),
                )
                self._call_on_loop(late)

    def _answered_or_stopped(self, answered: threading.Event, deadline: float) -> bool:
        """Wait for the loop's answer until `deadline`; False when it never came. A stop ends
        the wait: `stop` is called on the loop and joins this thread, so the loop answers no
        ping sent just before it, and waiting on would hang the worker's exit until the
        timeout took it for a stall (a worker that stopped by itself, its stacks dumped)."""
        while not answered.wait(min(self._ping, max(deadline - time.monotonic(), 0.0))):
            if self._stopped.is_set():
                return True
            if time.monotonic() >= deadline:
                return False
        return True

    def _call_on_loop(self, fn: Callable[[], object]) -> bool:
        """False once the loop is closed: the worker is stopping."""
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:
            return False
        return True
