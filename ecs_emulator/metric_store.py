"""CloudWatch's metric storage and statistics, for the emulator's own traffic and PutMetricData.

moto keeps every value as a Python object in one list and rescans it for every period of every
query; an hour of the emulator's traffic would make each GetMetricData take seconds. Here each
metric (namespace, name, dimensions, unit) keeps its samples in numpy columns ordered by time,
so a query slices its window and works per period on arrays.

Statistics are CloudWatch's:

- `SampleCount`, `Sum`, `Average`, `Minimum`, `Maximum`, over raw values (each weighted by its
  count, as `Values`/`Counts` put them) and statistic sets (`StatisticValues`);
- percentiles `pNN` or `pNN.N...` (e.g. `p50`, `p99`, `p99.9`) over the raw values only, as
  CloudWatch cannot take a percentile of a statistic set: the smallest value at or above that
  share of the samples (numpy's `inverted_cdf`), so a percentile is always a value someone put.

Data is kept for 3 hours behind the newest sample of its metric, as CloudWatch keeps
1-second data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

BASIC_STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")
RETENTION_SECONDS = 3 * 3600

Dimensions = tuple[tuple[str, str], ...]


def dimension_key(dimensions: dict[str, str]) -> Dimensions:
    """A metric's dimensions as CloudWatch matches them: the exact set, order ignored."""
    return tuple(sorted(dimensions.items()))


def check_statistic(stat: str) -> None:
    """Refuse a statistic this store cannot answer, with CloudWatch's kind of message."""
    if stat not in BASIC_STATISTICS and not PERCENTILE.match(stat):
        raise ValueError(
            f"The statistic {stat} is not valid: use one of {', '.join(BASIC_STATISTICS)} "
            "or a percentile pNN (p0 to p100, decimals allowed)"
        )


class _Samples:
    """Raw values of one metric: whole seconds since the epoch, values and their counts, in
    columns that grow by doubling. Appends are usually in time order; a late one marks the
    columns for one sort before the next query."""

    def __init__(self) -> None:
        self.seconds = np.empty(64, dtype=np.int64)
        self.values = np.empty(64)
        self.counts = np.empty(64)
        self.size = 0
        self.ordered = True

    def add(self, second: int, values: np.ndarray, counts: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.seconds):
            capacity = max(end, 2 * len(self.seconds))
            for name in ("seconds", "values", "counts"):
                column = getattr(self, name)
                grown = np.empty(capacity, dtype=column.dtype)
                grown[: self.size] = column[: self.size]
                setattr(self, name, grown)
        if self.size and second < self.seconds[self.size - 1]:
            self.ordered = False
        self.seconds[self.size : end] = second
        self.values[self.size : end] = values
        self.counts[self.size : end] = counts
        self.size = end
        self._forget_before(self.newest - RETENTION_SECONDS)

    @property
    def newest(self) -> int:
        self._order()
        return int(self.seconds[self.size - 1])

    def window(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._order()
        seconds = self.seconds[: self.size]
        low, high = np.searchsorted(seconds, (start, end))
        return seconds[low:high], self.values[low:high], self.counts[low:high]

    def _order(self) -> None:
        if not self.ordered:
            order = np.argsort(self.seconds[: self.size], kind="stable")
            for name in ("seconds", "values", "counts"):
                column = getattr(self, name)
                column[: self.size] = column[: self.size][order]
            self.ordered = True

    def _forget_before(self, cutoff: int) -> None:
        # Only once a minute's worth is due, so the copy is amortised over many appends.
        if self.seconds[0] >= cutoff - 60:
            return
        drop = int(np.searchsorted(self.seconds[: self.size], cutoff))
        if drop:
            for name in ("seconds", "values", "counts"):
                column = getattr(self, name)
                column[: self.size - drop] = column[drop : self.size].copy()
            self.size -= drop


@dataclass(frozen=True)
class StatisticSet:
    """One `StatisticValues` datum: CloudWatch keeps only these four numbers."""

    second: int
    sum: float
    minimum: float
    maximum: float
    count: float


@dataclass
class _Metric:
    samples: _Samples = field(default_factory=_Samples)
    sets: list[StatisticSet] = field(default_factory=list)


@dataclass(frozen=True)
class Datapoint:
    """One period's statistics (only those asked for, and only those it has data for)."""

    start: int
    values: dict[str, float]


@dataclass(frozen=True)
class _Period:
    """What one period holds: raw values with counts, and statistic sets."""

    values: np.ndarray
    counts: np.ndarray
    sets: list[StatisticSet]

    def statistic(self, stat: str) -> float | None:
        count = float(self.counts.sum()) + sum(s.count for s in self.sets)
        if stat == "SampleCount":
            return count
        total = float(np.dot(self.values, self.counts)) + sum(s.sum for s in self.sets)
        if stat == "Sum":
            return total
        if stat == "Average":
            return total / count if count else None
        if stat in ("Minimum", "Maximum"):
            pick = min if stat == "Minimum" else max
            candidates = [s.minimum if stat == "Minimum" else s.maximum for s in self.sets]
            present = self.values[self.counts > 0]
            if len(present):
                candidates.append(float(present.min() if stat == "Minimum" else present.max()))
            return pick(candidates) if candidates else None
        if not self.counts.sum():
            return None
        share = float(stat[1:])
        return float(np.percentile(self.values, share, weights=self.counts, method="inverted_cdf"))


class MetricStore:
    """Every metric of one account and region. Not thread-safe: the emulator's lock orders
    every call (requests and the traffic loop alike)."""

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str, Dimensions], dict[str | None, _Metric]] = {}

    def knows(self, namespace: str, name: str, dimensions: Dimensions, unit: str | None) -> bool:
        return unit in self._metrics.get((namespace, name, dimensions), {})

    def units(self, namespace: str, name: str, dimensions: Dimensions) -> list[str | None]:
        """The units this metric was put with (None: without one)."""
        return list(self._metrics.get((namespace, name, dimensions), {}))

    def add_values(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        second: int,
        values: np.ndarray,
        counts: np.ndarray | None = None,
        unit: str | None = None,
    ) -> None:
        """Raw values (each `counts` times, default once) at one whole second."""
        if counts is None:
            counts = np.ones(len(values))
        self._metric(namespace, name, dimensions, unit).samples.add(second, values, counts)

    def add_set(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        unit: str | None,
        data: StatisticSet,
    ) -> None:
        self._metric(namespace, name, dimensions, unit).sets.append(data)

    def datapoints(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        unit: str | None,
        start: int,
        end: int,
        period: int,
        stats: list[str],
    ) -> list[Datapoint]:
        """Per period from `start` (periods of `period` seconds, the last one ending at or
        after `end`; data at `end` or later excluded), oldest first; periods without data
        are left out, as CloudWatch does. Without `unit`, every unit of the metric counts."""
        for stat in stats:
            check_statistic(stat)
        by_unit = self._metrics.get((namespace, name, dimensions), {})
        if unit is None:
            metrics = list(by_unit.values())
        else:
            metrics = [by_unit[unit]] if unit in by_unit else []
        windows = [metric.samples.window(start, end) for metric in metrics]
        seconds = np.concatenate([w[0] for w in windows]) if windows else np.empty(0, np.int64)
        values = np.concatenate([w[1] for w in windows]) if windows else np.empty(0)
        counts = np.concatenate([w[2] for w in windows]) if windows else np.empty(0)
        if len(windows) > 1:
            order = np.argsort(seconds, kind="stable")
            seconds, values, counts = seconds[order], values[order], counts[order]
        sets: dict[int, list[StatisticSet]] = {}
        for metric in metrics:
            for data in metric.sets:
                if start <= data.second < end:
                    sets.setdefault((data.second - start) // period, []).append(data)
        bins = (seconds - start) // period
        filled = np.array(sorted(set(np.unique(bins).tolist()) | set(sets)), dtype=np.int64)
        lows = np.searchsorted(bins, filled, side="left")
        highs = np.searchsorted(bins, filled, side="right")
        points = []
        for index, low, high in zip(filled.tolist(), lows, highs, strict=True):
            held = _Period(values[low:high], counts[low:high], sets.get(index, []))
            answered = {stat: held.statistic(stat) for stat in stats}
            found = {stat: value for stat, value in answered.items() if value is not None}
            if found:
                points.append(Datapoint(start + index * period, found))
        return points

    def _metric(
        self, namespace: str, name: str, dimensions: Dimensions, unit: str | None
    ) -> _Metric:
        return self._metrics.setdefault((namespace, name, dimensions), {}).setdefault(
            unit, _Metric()
        )
