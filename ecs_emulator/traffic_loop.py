"""The clock of the emulator's traffic: a thread that has each whole second's traffic sent once
that second is over, and after a stall only the last few seconds (`Traffic` sends them).

Apart from the traffic itself so that its timing can be tested alone, with a clock the test
sets and no moto behind it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from .loop_thread import LoopThread
from .settings import EmulatorSettings

log = logging.getLogger(__name__)

# After a stall (a suspended process, a long lock), at most this many missed seconds are sent.
MAX_CATCH_UP_SECONDS = 5


class SecondSender(Protocol):
    """What the loop drives (`traffic.Traffic`)."""

    settings: EmulatorSettings
    requests: int

    def send(self, second: int) -> None: ...


class TrafficLoop:
    """The thread that sends each second's traffic once that second is over."""

    def __init__(
        self,
        traffic: SecondSender,
        lock: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.traffic = traffic
        self._lock = lock
        self._clock = clock
        self._thread = LoopThread("ecs-emulator-traffic")
        # The last whole second the loop is done with (sent, or skipped without traffic).
        self.last_second: int | None = None

    def status(self) -> dict[str, Any]:
        """For the admin endpoint: how far the metric clock has come, and what was sent."""
        return {"second": self.last_second, "requests": self.traffic.requests}

    def start(self) -> None:
        """Traffic from the current second on (sent once it ends)."""
        self._thread.start(self._run, int(self._clock()))

    def stop(self) -> None:
        self._thread.stop()

    def _run(self, next_second: int) -> None:
        while not self._thread.stopped(max(0.0, next_second + 1 - self._clock())):
            now = int(self._clock())
            if now <= next_second:
                continue
            if self.traffic.settings.traffic_rps > 0:
                for second in range(max(next_second, now - MAX_CATCH_UP_SECONDS), now):
                    try:
                        with self._lock:
                            self.traffic.send(second)
                    except Exception:  # a bad second must not end the traffic
                        log.exception("traffic for second %s failed", second)
            next_second = now
            self.last_second = now - 1
