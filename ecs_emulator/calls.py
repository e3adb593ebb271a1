"""Counts ECS API calls so tests can check a workflow's polling budget; holds calls in flight."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class CallStats:
    """Totals per operation, throttled calls, the busiest whole wall-clock second, and each
    second's calls by operation (`per_second`, the last KEPT_SECONDS of them: where a
    benchmark's time went, second by second: when the budget was full, when it idled).

    A call counts in the second it arrived (`arrived_at`, the kernel's receive time: see
    ecs_emulator.arrivals), as ECS counts it; `max_per_second_handled` is the busiest second as
    the emulator's threads got to the calls, which its own stalls bunch."""

    # Seconds `per_second` keeps: a benchmark's run, not a local stack's days.
    KEPT_SECONDS = 3600

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._by_operation: Counter[str] = Counter()
            self._per_second: dict[int, Counter[str]] = {}
            self._throttled = 0
            self._max_per_second = 0
            self._handled_second, self._handled_in_second = 0, 0
            self._max_per_second_handled = 0

    def record(self, operation: str, throttled: bool, arrived_at: float | None = None) -> None:
        handled = int(time.time())
        second = handled if arrived_at is None else int(arrived_at)
        with self._lock:
            if handled != self._handled_second:
                self._handled_second, self._handled_in_second = handled, 0
            self._handled_in_second += 1
            self._max_per_second_handled = max(
                self._max_per_second_handled, self._handled_in_second
            )
            self._by_operation[operation] += 1
            self._throttled += throttled
            in_second = self._per_second.get(second)
            if in_second is None:
                in_second = self._per_second[second] = Counter()
                if len(self._per_second) > self.KEPT_SECONDS:
                    del self._per_second[min(self._per_second)]
            in_second[operation] += 1
            self._max_per_second = max(self._max_per_second, in_second.total())

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": sum(self._by_operation.values()),
                "by_operation": dict(self._by_operation),
                "max_per_second": self._max_per_second,
                "max_per_second_handled": self._max_per_second_handled,
                "throttled": self._throttled,
                "per_second": [
                    [second, dict(counts)] for second, counts in sorted(self._per_second.items())
                ],
            }


class HeldOperations:
    """ECS operations whose requests, once counted, wait unanswered until released: rehearses a
    client that dies while its call is in flight (the call still takes effect afterwards)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released: dict[str, threading.Event] = {}

    @contextmanager
    def holding(self, operation: str) -> Iterator[None]:
        released = threading.Event()
        with self._lock:
            self._released[operation] = released
        try:
            yield
        finally:
            with self._lock:
                del self._released[operation]
            released.set()

    def wait_if_held(self, operation: str) -> None:
        with self._lock:
            released = self._released.get(operation)
        if released is not None:
            released.wait()
