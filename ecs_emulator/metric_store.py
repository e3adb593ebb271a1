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


def percentile(values: np.ndarray, share: float, counts: np.ndarray | None = None) -> float:
    """CloudWatch's `p<share>` of `values` (each `counts` times): the smallest value at or
    above `share` percent of the samples, so always one of the values. For anyone who draws
    samples as the emulator's traffic does and wants the statistic CloudWatch would give."""
    return float(np.percentile(values, share, weights=counts, method="inverted_cdf"))


class _Samples:
    """Raw values of one metric: whole seconds since the epoch, values and their counts, in
    columns that grow by doubling. Appends are in time order but for data put late by hand,
    which sorts the columns again."""

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


def _raw_statistics(
    bins: np.ndarray, values: np.ndarray, counts: np.ndarray, shares: list[str]
) -> tuple[list[int], dict[str, list[float]]]:
    """The statistics of raw values per period, all periods at once (a query of a few hundred
    1-second periods must not hold the emulator's lock for long): the periods that have
    values, and per statistic (the plain ones, and the percentiles `shares`) one value each.
    `bins` (the period of each value) is sorted.

    Percentiles follow numpy's weighted `inverted_cdf` (``percentile``): within a period,
    sorted by value, the first value whose share of the period's counts so far reaches the
    percentile.
    """
    present = counts > 0
    bins, values, counts = bins[present], values[present], counts[present]
    if not len(bins):
        return [], {}
    starts = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]])
    lengths = np.diff(np.r_[starts, len(bins)])
    samples = np.add.reduceat(counts, starts)
    found = {
        "SampleCount": samples,
        "Sum": np.add.reduceat(values * counts, starts),
        "Minimum": np.minimum.reduceat(values, starts),
        "Maximum": np.maximum.reduceat(values, starts),
    }
    if shares:
        order = np.lexsort((values, bins))
        ordered, cumulative = values[order], np.cumsum(counts[order])
        before = np.r_[0.0, cumulative[starts[1:] - 1]]
        cdf = (cumulative - np.repeat(before, lengths)) / np.repeat(samples, lengths)
        for stat in shares:
            below = np.add.reduceat((cdf < float(stat[1:]) / 100).astype(np.int64), starts)
            found[stat] = ordered[np.minimum(starts + below, starts + lengths - 1)]
    return bins[starts].tolist(), {stat: column.tolist() for stat, column in found.items()}


def _period_statistics(
    raw: dict[str, float], sets: list[StatisticSet], stats: list[str]
) -> dict[str, float]:
    """One period's statistics from its raw values' (`raw`, empty without any) and its
    statistic sets. Percentiles are of raw values only, as in CloudWatch."""
    if not sets:
        plain = dict(raw)
    else:
        minima, maxima = [s.minimum for s in sets], [s.maximum for s in sets]
        if raw:
            minima.append(raw["Minimum"])
            maxima.append(raw["Maximum"])
        plain = {
            **raw,
            "SampleCount": raw.get("SampleCount", 0.0) + sum(s.count for s in sets),
            "Sum": raw.get("Sum", 0.0) + sum(s.sum for s in sets),
            "Minimum": min(minima),
            "Maximum": max(maxima),
        }
    if plain.get("SampleCount"):
        plain["Average"] = plain["Sum"] / plain["SampleCount"]
    return {stat: plain[stat] for stat in stats if stat in plain}


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
        shares = [stat for stat in stats if PERCENTILE.match(stat)]
        raw_periods, raw = _raw_statistics(bins, values, counts, shares)
        position = {index: at for at, index in enumerate(raw_periods)}
        points = []
        for index in sorted(position.keys() | sets.keys()):
            at = position.get(index)
            held = {} if at is None else {stat: column[at] for stat, column in raw.items()}
            found = _period_statistics(held, sets.get(index, []), stats)
            if found:
                points.append(Datapoint(start + index * period, found))
        return points

    def _metric(
        self, namespace: str, name: str, dimensions: Dimensions, unit: str | None
    ) -> _Metric:
        return self._metrics.setdefault((namespace, name, dimensions), {}).setdefault(
            unit, _Metric()
        )
