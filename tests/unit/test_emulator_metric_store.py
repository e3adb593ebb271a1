"""The emulator's CloudWatch metric store: periods, statistics and percentiles as CloudWatch
computes them, late and old data, units."""

from __future__ import annotations

import numpy as np
import pytest

from ecs_emulator.metric_store import (
    RETENTION_SECONDS,
    MetricStore,
    StatisticSet,
    check_statistic,
    dimension_key,
    percentile,
)

NAMESPACE, NAME = "Shop", "Latency"
DIMENSIONS = dimension_key({"ServiceName": "shop", "ClusterName": "c"})


def points(store: MetricStore, stats: list[str], start: int, end: int, period: int, unit=None):
    found = store.datapoints(NAMESPACE, NAME, DIMENSIONS, unit, start, end, period, stats)
    return [(point.start, point.values) for point in found]


def test_periods_start_at_the_start_leave_out_the_end_and_skip_empty_periods() -> None:
    store = MetricStore()
    for second in (100, 101, 104, 112, 120):
        store.add_values(NAMESPACE, NAME, DIMENSIONS, second, np.array([float(second)]))
    assert points(store, ["Sum", "SampleCount"], 100, 120, 5) == [
        (100, {"Sum": 305.0, "SampleCount": 3.0}),
        (110, {"Sum": 112.0, "SampleCount": 1.0}),
    ]


def test_dimensions_match_as_an_exact_set_whatever_their_order() -> None:
    store = MetricStore()
    store.add_values(NAMESPACE, NAME, DIMENSIONS, 100, np.array([1.0]))
    reordered = dimension_key({"ClusterName": "c", "ServiceName": "shop"})
    assert store.datapoints(NAMESPACE, NAME, reordered, None, 100, 101, 1, ["Sum"])
    fewer = dimension_key({"ServiceName": "shop"})
    assert store.datapoints(NAMESPACE, NAME, fewer, None, 100, 101, 1, ["Sum"]) == []


def test_percentiles_are_values_put_weighted_by_their_counts() -> None:
    store = MetricStore()
    store.add_values(NAMESPACE, NAME, DIMENSIONS, 100, np.arange(1.0, 101.0))
    store.add_values(NAMESPACE, NAME, DIMENSIONS, 101, np.array([500.0]), np.array([100.0]))
    ((_, values),) = points(store, ["p25", "p50", "p50.5", "p99", "p100", "p0"], 100, 102, 2)
    # 200 samples: 1..100 once, then 500 a hundred times; the value at or above each share.
    assert values == {"p25": 50, "p50": 100, "p50.5": 500, "p99": 500, "p100": 500, "p0": 1}


def test_percentile_without_counts_is_a_value_of_the_sample() -> None:
    values = np.array([3.0, 1.0, 2.0, 4.0])
    shares = (0, 25, 26, 50, 99, 100)
    assert [percentile(values, share) for share in shares] == [1, 1, 2, 2, 4, 4]


def test_a_statistic_set_counts_for_plain_statistics_and_no_percentile() -> None:
    store = MetricStore()
    store.add_set(NAMESPACE, NAME, DIMENSIONS, None, StatisticSet(100, 40.0, 2.0, 30.0, 4.0))
    stats = ["SampleCount", "Sum", "Average", "Minimum", "Maximum", "p50"]
    assert points(store, stats, 100, 101, 1) == [
        (100, {"SampleCount": 4, "Sum": 40, "Average": 10, "Minimum": 2, "Maximum": 30})
    ]
    store.add_values(NAMESPACE, NAME, DIMENSIONS, 100, np.array([1.0, 50.0]))
    ((_, values),) = points(store, stats, 100, 101, 1)
    assert values == {
        "SampleCount": 6,
        "Sum": 91,
        "Average": pytest.approx(91 / 6),
        "Minimum": 1,
        "Maximum": 50,
        "p50": 1,
    }


def test_late_data_lands_in_its_own_period() -> None:
    store = MetricStore()
    for second in (105, 101, 103, 100):
        store.add_values(NAMESPACE, NAME, DIMENSIONS, second, np.array([float(second)]))
    assert points(store, ["Maximum"], 100, 106, 2) == [
        (100, {"Maximum": 101}),
        (102, {"Maximum": 103}),
        (104, {"Maximum": 105}),
    ]


def test_data_older_than_the_retention_behind_the_newest_is_forgotten() -> None:
    store = MetricStore()
    old, newest = 1_000, 1_000 + RETENTION_SECONDS + 120
    store.add_values(NAMESPACE, NAME, DIMENSIONS, old, np.array([1.0]))
    store.add_values(NAMESPACE, NAME, DIMENSIONS, old + 100, np.array([2.0]))
    assert points(store, ["Sum"], old, old + 1, 1) == [(old, {"Sum": 1})]
    store.add_values(NAMESPACE, NAME, DIMENSIONS, newest, np.array([3.0]))
    assert points(store, ["Sum"], old, newest + 1, 60 * 60 * 4) == [(old, {"Sum": 3})]
    assert points(store, ["Sum"], old + 100, old + 101, 1) == []


def test_a_unit_selects_its_data_and_no_unit_takes_all() -> None:
    store = MetricStore()
    store.add_values(NAMESPACE, NAME, DIMENSIONS, 100, np.array([1.0]), unit="Milliseconds")
    store.add_values(NAMESPACE, NAME, DIMENSIONS, 100, np.array([0.5]), unit="Seconds")
    assert points(store, ["Sum"], 100, 101, 1, unit="Seconds") == [(100, {"Sum": 0.5})]
    assert points(store, ["Sum"], 100, 101, 1, unit="Count") == []
    assert points(store, ["Sum"], 100, 101, 1) == [(100, {"Sum": 1.5})]
    assert store.units(NAMESPACE, NAME, DIMENSIONS) == ["Milliseconds", "Seconds"]


@pytest.mark.parametrize("stat", ["p101", "p", "P99", "median", "tm99", "p99.9.9", ""])
def test_statistics_cloudwatch_would_not_answer_are_refused(stat: str) -> None:
    with pytest.raises(ValueError, match="is not valid"):
        check_statistic(stat)


@pytest.mark.parametrize("stat", ["p0", "p9", "p50", "p99", "p99.99", "p100", "Sum"])
def test_percentiles_and_plain_statistics_are_accepted(stat: str) -> None:
    check_statistic(stat)


def test_every_period_gets_the_statistics_numpy_gives_for_it_alone() -> None:
    """Periods are computed together; each must be what numpy says for its own values."""
    rng = np.random.default_rng(24)
    shares = ["p0", "p10", "p50", "p90", "p99", "p99.9", "p100"]
    stats = ["SampleCount", "Sum", "Average", "Minimum", "Maximum", *shares]
    for _ in range(50):
        store = MetricStore()
        by_period: dict[int, tuple[list[float], list[float]]] = {}
        for second in rng.choice(60, size=rng.integers(1, 40)).tolist():
            size = int(rng.integers(1, 30))
            values = np.round(rng.lognormal(3.9, 0.3, size), int(rng.integers(0, 3)))
            counts = rng.integers(0, 4, size).astype(float)
            store.add_values(NAMESPACE, NAME, DIMENSIONS, 1000 + second, values, counts)
            held = by_period.setdefault(second // 7, ([], []))
            held[0].extend(values.tolist())
            held[1].extend(counts.tolist())
        expected = []
        for period, (values, counts) in sorted(by_period.items()):
            v, c = np.array(values), np.array(counts)
            if not c.sum():
                continue
            shown = v[c > 0]
            found = {
                "SampleCount": c.sum(),
                "Sum": float(np.dot(v, c)),
                "Average": float(np.dot(v, c)) / c.sum(),
                "Minimum": shown.min(),
                "Maximum": shown.max(),
            }
            found.update({share: percentile(v, float(share[1:]), c) for share in shares})
            expected.append((1000 + period * 7, pytest.approx(found)))
        assert points(store, stats, 1000, 1060, 7) == expected
