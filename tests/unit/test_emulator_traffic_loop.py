"""The traffic loop's clock: each whole second is sent once, after it ends; a stall replays only
the last few; without traffic nothing is sent but the clock still moves. Driven by a clock the
test sets, so no test waits for real seconds."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ecs_emulator.settings import EmulatorSettings
from ecs_emulator.traffic import MAX_CATCH_UP_SECONDS, TrafficLoop
from tests.helpers import wait_until_sync


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class SentSeconds:
    """Stands in for `Traffic`: records the seconds it is asked to send."""

    settings: EmulatorSettings
    seconds: list[int] = field(default_factory=list)
    requests: int = 0

    def send(self, second: int) -> None:
        self.seconds.append(second)


def run_loop(clock: Clock, traffic: SentSeconds) -> TrafficLoop:
    loop = TrafficLoop(traffic, threading.RLock(), clock)  # type: ignore[arg-type]
    loop.start()
    return loop


def done_with(loop: TrafficLoop, second: int) -> Any:
    return wait_until_sync(lambda: loop.last_second == second, timeout=5)


def test_each_second_is_sent_once_after_it_ends() -> None:
    # Just before each whole second, so the loop's waits are short.
    clock = Clock(1000.95)
    traffic = SentSeconds(EmulatorSettings(traffic_rps=20))
    loop = run_loop(clock, traffic)
    try:
        clock.now = 1001.95
        done_with(loop, 1000)
        clock.now = 1003.95
        done_with(loop, 1002)
        assert traffic.seconds == [1000, 1001, 1002]
        assert loop.status() == {"second": 1002, "requests": 0}
    finally:
        loop.stop()


def test_after_a_stall_only_the_last_seconds_are_sent() -> None:
    clock = Clock(1000.95)
    traffic = SentSeconds(EmulatorSettings(traffic_rps=20))
    loop = run_loop(clock, traffic)
    try:
        clock.now = 1100.95
        done_with(loop, 1099)
        assert traffic.seconds == list(range(1100 - MAX_CATCH_UP_SECONDS, 1100))
    finally:
        loop.stop()


def test_without_traffic_nothing_is_sent_but_the_clock_moves() -> None:
    clock = Clock(1000.95)
    traffic = SentSeconds(EmulatorSettings(traffic_rps=0))
    loop = run_loop(clock, traffic)
    try:
        clock.now = 1002.95
        done_with(loop, 1001)
        assert traffic.seconds == []
        traffic.settings.traffic_rps = 0.5
        clock.now = 1003.95
        done_with(loop, 1002)
        assert traffic.seconds == [1002]
    finally:
        loop.stop()
