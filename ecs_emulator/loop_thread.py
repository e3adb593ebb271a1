"""A named daemon thread that runs one loop of the emulator (the scheduler's ticks, the traffic's
seconds) until it is stopped: the loop waits with `stopped(seconds)` between its rounds, so a
stop ends the wait at once instead of after the round's pause."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# How long `stop` waits for the loop's current round to end.
STOP_JOIN_SECONDS = 5


class LoopThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, loop: Callable[..., None], *args: Any) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=loop, args=args, name=self._name, daemon=True)
        self._thread.start()

    def stopped(self, seconds: float) -> bool:
        """Wait up to `seconds`; True once `stop` was called."""
        return self._stop.wait(seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_JOIN_SECONDS)
