"""The traffic loop's clock: each whole second is sent once, after it ends; a stall replays only
the last few; without traffic nothing is sent but the clock still moves. Driven by a clock the
test sets, so no test waits for real seconds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ecs_emulator.settings import EmulatorSettings
from ecs_emulator.traffic_loop import MAX_CATCH_UP_SECONDS, TrafficLoop
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


@dataclass
class Running:
    clock: Clock
    traffic: SentSeconds
    loop: TrafficLoop

    def done_with(self, second: int) -> Any:
        return wait_until_sync(lambda: self.loop.last_second == second, timeout=5)


@pytest.fixture
def running() -> Iterator[Running]:
    """A loop started just before second 1001 (so its waits are short), with traffic on."""
    clock = Clock(1000.95)
    traffic = SentSeconds(EmulatorSettings(traffic_rps=20))
    loop = TrafficLoop(traffic, threading.RLock(), clock)
    loop.start()
    yield Running(clock, traffic, loop)
    loop.stop()


def test_each_second_is_sent_once_after_it_ends(running: Running) -> None:
    running.clock.now = 1001.95
    running.done_with(1000)
    running.clock.now = 1003.95
    running.done_with(1002)
    assert running.traffic.seconds == [1000, 1001, 1002]
    assert running.loop.status() == {"second": 1002, "requests": 0}


def test_after_a_stall_only_the_last_seconds_are_sent(running: Running) -> None:
    running.clock.now = 1100.95
    running.done_with(1099)
    assert running.traffic.seconds == list(range(1100 - MAX_CATCH_UP_SECONDS, 1100))


def test_without_traffic_nothing_is_sent_but_the_clock_moves(running: Running) -> None:
    running.traffic.settings.traffic_rps = 0
    running.clock.now = 1002.95
    running.done_with(1001)
    assert running.traffic.seconds == []
    running.traffic.settings.traffic_rps = 0.5
    running.clock.now = 1003.95
    running.done_with(1002)
    assert running.traffic.seconds == [1002]
