"""The emulator's call counts (ecs_emulator.calls.CallStats): the busiest second survives the
seconds `per_second` no longer keeps, which a local stack running for days would otherwise
pile up."""

from __future__ import annotations

import pytest

from ecs_emulator import calls
from ecs_emulator.calls import CallStats


def test_per_second_keeps_the_last_seconds_and_the_busiest_one_is_remembered(
    monkeypatch: pytest.MonkeyPatch,
):
    now = [1_000.0]
    monkeypatch.setattr(calls.time, "time", lambda: now[0])
    monkeypatch.setattr(CallStats, "KEPT_SECONDS", 3)
    stats = CallStats()
    for _ in range(5):  # the busiest second, soon forgotten second by second
        stats.record("DescribeServices", throttled=False)
    for second in range(1, 5):
        now[0] = 1_000.0 + second
        stats.record("CreateService", throttled=second == 4)

    snapshot = stats.snapshot()
    assert snapshot["per_second"] == [
        [1_002, {"CreateService": 1}],
        [1_003, {"CreateService": 1}],
        [1_004, {"CreateService": 1}],
    ]
    assert snapshot["max_per_second"] == 5
    assert snapshot["by_operation"] == {"DescribeServices": 5, "CreateService": 4}
    assert (snapshot["total"], snapshot["throttled"]) == (9, 1)


def test_calls_count_in_the_second_they_arrived_and_the_handled_busiest_second_is_kept_apart(
    monkeypatch: pytest.MonkeyPatch,
):
    """Three calls arrived across two seconds and were handled together in the later one (an
    emulator that stalled): the busiest second by arrival holds two, by handling three."""
    monkeypatch.setattr(calls.time, "time", lambda: 1_001.5)
    stats = CallStats()
    for arrived_at in (1_000.2, 1_000.9, 1_001.1):
        stats.record("DescribeServices", throttled=False, arrived_at=arrived_at)

    snapshot = stats.snapshot()
    assert snapshot["per_second"] == [
        [1_000, {"DescribeServices": 2}],
        [1_001, {"DescribeServices": 1}],
    ]
    assert (snapshot["max_per_second"], snapshot["max_per_second_handled"]) == (2, 3)
