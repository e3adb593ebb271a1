"""Waiting for a condition: one deadline loop, driven by an async poller (tests on the event
loop, where the in-process worker must keep running) and a sync one (threads, sync tests)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT = 30.0
DEFAULT_EVERY = 0.05
# Each pause is BACKOFF times the last, up to SLOWEST_EVERY (a wait asked to poll more slowly
# than that keeps its own pace). A condition met at once is seen at once, and a long wait (a
# gate, an analysis interval) polls 4 times a second instead of 20: one status query costs
# about 6 ms of CPU between the test, the Temporal server and the worker.
BACKOFF = 1.5
SLOWEST_EVERY = 0.25


class Deadline:
    """The loop both waits share: `met` takes each value the predicate returned, says whether
    the wait is over, and fails it (with that last value) once `timeout` has passed; `pause`
    is how long to wait before the next poll."""

    def __init__(self, timeout: float, every: float) -> None:
        self.timeout = timeout
        self.end = time.monotonic() + timeout
        self._next_pause = every
        self._slowest = max(every, SLOWEST_EVERY)

    def pause(self) -> float:
        pause = self._next_pause
        self._next_pause = min(pause * BACKOFF, self._slowest)
        return pause

    def met(self, value: Any) -> bool:
        if value:
            return True
        if time.monotonic() > self.end:
            raise AssertionError(
                f"condition not met within {self.timeout}s (last value: {value!r})"
            )
        return False


async def wait_until(
    predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, every: float = DEFAULT_EVERY
) -> Any:
    """Poll `predicate` (plain or async) until it returns something truthy; return that. The
    first pause is `every`; the pauses grow from there (`Deadline.pause`)."""
    deadline = Deadline(timeout, every)
    while not deadline.met(value := await _value_of(predicate)):
        await asyncio.sleep(deadline.pause())
    return value


def wait_until_sync(
    predicate: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT, every: float = DEFAULT_EVERY
) -> Any:
    """`wait_until` for a plain predicate, blocking the calling thread between polls."""
    deadline = Deadline(timeout, every)
    while not deadline.met(value := predicate()):
        time.sleep(deadline.pause())
    return value


async def _value_of(predicate: Callable[[], Any]) -> Any:
    value = predicate()
    return await value if inspect.isawaitable(value) else value
