"""moto's CloudWatch with the emulator's metric storage: percentiles, and queries that stay fast.

moto answers `GetMetricData` with a percentile (`p99`) by failing (HTTP 500), ignores
`ExtendedStatistics` in `GetMetricStatistics`, and rescans every value ever put for every
period of every query. ``install`` replaces the three metric methods of moto's CloudWatch
backend (and the response method that drops `ExtendedStatistics`) with ones backed by
``metric_store.MetricStore``; alarms, dashboards and the rest stay moto's. Each backend keeps
its store as an attribute, so a reset (moto builds new backends) wipes the metrics too.

`ListMetrics` stays moto's: the first datum of each metric is also handed to moto's own list,
which `ListMetrics` reads, and nothing else does any more.

Split out of ``moto_internals`` like ``moto_elbv2``; every moto name used for CloudWatch is
here, and ``tests/e2e/test_emulator_moto_internals.py`` checks them.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

import numpy as np
from moto.cloudwatch.exceptions import (
    InvalidParameterCombination,
    InvalidParameterValue,
    ValidationError,
)
from moto.cloudwatch.metric_data_expression_parser import parse_expression
from moto.cloudwatch.models import CloudWatchBackend, MetricDatum, cloudwatch_backends
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from .metric_store import Dimensions, MetricStore, StatisticSet, dimension_key

# Replaced on moto's CloudWatchBackend, and read or called on it (checked by the test).
REPLACED_BACKEND_METHODS = ("put_metric_data", "get_metric_data", "get_metric_statistics")
BACKEND_ATTRIBUTES = ("metric_data", "_validate_parameters_put_metric_data")
_STORE = "_ecs_emulator_metrics"


def install() -> None:
    """Put the emulator's metric methods on moto's CloudWatch backend and response classes
    (process-wide, like moto's state; installing twice changes nothing)."""
    CloudWatchBackend.put_metric_data = _put_metric_data  # type: ignore[method-assign]
    CloudWatchBackend.get_metric_data = _get_metric_data  # type: ignore[method-assign]
    CloudWatchBackend.get_metric_statistics = _get_metric_statistics  # type: ignore[method-assign,assignment]
    CloudWatchResponse.get_metric_statistics = _respond_metric_statistics  # type: ignore[method-assign]


class MetricWriter:
    """Puts metrics into one account and region as PutMetricData would, without the HTTP
    round trip: the emulator's traffic loop writes through this, under the emulator lock."""

    def __init__(self, account_id: str, region: str) -> None:
        self._backend = cloudwatch_backends[account_id][region]

    def values(
        self,
        namespace: str,
        name: str,
        dimensions: Dimensions,
        second: int,
        values: np.ndarray,
        unit: str,
    ) -> None:
        _add_values(self._backend, namespace, name, dimensions, second, values, None, unit)


def epoch_second(moment: datetime) -> int:
    """Whole seconds since the epoch; a naive datetime is UTC (as moto's are)."""
    return calendar.timegm(moment.utctimetuple())


def _dimensions(listed: list[dict[str, str]] | None) -> Dimensions:
    return dimension_key({d["Name"]: d["Value"] for d in listed or []})


def _store(backend: CloudWatchBackend) -> MetricStore:
    store = vars(backend).get(_STORE)
    if store is None:
        store = MetricStore()
        setattr(backend, _STORE, store)
    return store


def _add_values(
    backend: CloudWatchBackend,
    namespace: str,
    name: str,
    dimensions: Dimensions,
    second: int,
    values: np.ndarray,
    counts: np.ndarray | None,
    unit: str | None,
) -> None:
    store = _store(backend)
    _announce(backend, store, namespace, name, dimensions, unit, second)
    store.add_values(namespace, name, dimensions, second, values, counts, unit)


def _announce(
    backend: CloudWatchBackend,
    store: MetricStore,
    namespace: str,
    name: str,
    dimensions: Dimensions,
    unit: str | None,
    second: int,
) -> None:
    """A metric's first datum goes to moto's list as well, for ListMetrics."""
    if not store.knows(namespace, name, dimensions, unit):
        listed = [{"Name": key, "Value": value} for key, value in dimensions]
        when = datetime.fromtimestamp(second, UTC)
        backend.metric_data.append(MetricDatum(namespace, name, 0.0, listed, when, unit))


def _put_metric_data(
    self: CloudWatchBackend, namespace: str, metric_data: list[dict[str, Any]]
) -> None:
    for number, datum in enumerate(metric_data, start=1):
        self._validate_parameters_put_metric_data(datum, number)
    now = datetime.now(UTC)
    for datum in metric_data:
        name = datum["MetricName"]
        dimensions = _dimensions(datum.get("Dimensions"))
        second = epoch_second(datum.get("Timestamp") or now)
        unit = datum.get("Unit")
        if datum.get("Values"):
            values = np.array([float(v) for v in datum["Values"]])
            counts = datum.get("Counts") or [1] * len(values)
            weights = np.array([float(c) for c in counts])
            _add_values(self, namespace, name, dimensions, second, values, weights, unit)
        elif datum.get("StatisticValues"):
            stats = datum["StatisticValues"]
            store = _store(self)
            _announce(self, store, namespace, name, dimensions, unit, second)
            store.add_set(
                namespace,
                name,
                dimensions,
                unit,
                StatisticSet(
                    second,
                    float(stats["Sum"]),
                    float(stats["Minimum"]),
                    float(stats["Maximum"]),
                    float(stats["SampleCount"]),
                ),
            )
        else:
            value = np.array([float(datum.get("Value", 0))])
            _add_values(self, namespace, name, dimensions, second, value, None, unit)


def _window(start_time: datetime, end_time: datetime, error: type[Exception]) -> tuple[int, int]:
    """moto's (and CloudWatch's) whole-second bounds, refused when empty."""
    start, end = epoch_second(start_time), epoch_second(end_time)
    if start >= end:
        raise error("The parameter StartTime must be less than the parameter EndTime.")
    return start, end


def _datapoints(
    backend: CloudWatchBackend,
    metric: dict[str, Any],
    unit: str | None,
    window: tuple[int, int],
    period: int,
    stats: list[str],
) -> list[Any]:
    if period < 1:
        raise InvalidParameterValue("The parameter Period must be at least 1.")
    dimensions = _dimensions(metric.get("Dimensions"))
    try:
        return _store(backend).datapoints(
            metric["Namespace"], metric["MetricName"], dimensions, unit, *window, period, stats
        )
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from None


def _get_metric_data(
    self: CloudWatchBackend,
    queries: list[dict[str, Any]],
    start_time: datetime,
    end_time: datetime,
    scan_by: str = "TimestampAscending",
) -> list[dict[str, Any]]:
    window = _window(start_time, end_time, ValidationError)
    results: list[dict[str, Any]] = []
    returned: list[dict[str, Any]] = []
    for query in queries:
        expression = query.get("Expression")
        if expression is not None and expression.lstrip().upper().startswith("SELECT"):
            raise InvalidParameterValue("Metrics Insights queries are not emulated.")
        if expression is not None:
            values, timestamps = parse_expression(expression, results)
            label = query.get("Label") or query["Id"]
        else:
            stat = query["MetricStat"]
            points = _datapoints(
                self,
                stat["Metric"],
                stat.get("Unit"),
                window,
                int(stat["Period"]),
                [stat["Stat"]],
            )
            values = [point.values[stat["Stat"]] for point in points]
            timestamps = [datetime.fromtimestamp(point.start, UTC) for point in points]
            label = query.get("Label") or f"{stat['Metric']['MetricName']} {stat['Stat']}"
        if scan_by == "TimestampDescending":
            values, timestamps = values[::-1], timestamps[::-1]
        result = {
            "id": query["Id"],
            "label": label,
            "values": values,
            "timestamps": timestamps,
            "status_code": "Complete",
        }
        results.append(result)
        if query.get("ReturnData", True):
            returned.append(result)
    return returned


def _get_metric_statistics(
    self: CloudWatchBackend,
    namespace: str,
    metric_name: str,
    start_time: datetime,
    end_time: datetime,
    period: int,
    stats: list[str],
    dimensions: list[dict[str, str]],
    unit: str | None = None,
    extended_stats: list[str] | None = None,
) -> list[dict[str, Any]]:
    window = _window(start_time, end_time, InvalidParameterValue)
    extended = list(extended_stats or [])
    metric = {"Namespace": namespace, "MetricName": metric_name, "Dimensions": dimensions}
    points = _datapoints(self, metric, unit, window, period, list(stats) + extended)
    if unit is None:
        units = _store(self).units(namespace, metric_name, _dimensions(dimensions))
        unit = units[0] if len(units) == 1 else None
    answers = []
    for point in points:
        answer: dict[str, Any] = {
            "Timestamp": datetime.fromtimestamp(point.start, UTC),
            "Unit": unit or "None",
        }
        answer.update({stat: point.values[stat] for stat in stats if stat in point.values})
        if extended:
            answer["ExtendedStatistics"] = {
                stat: point.values[stat] for stat in extended if stat in point.values
            }
        answers.append(answer)
    return answers


def _respond_metric_statistics(self: CloudWatchResponse) -> ActionResult:
    """moto's response method, passing `ExtendedStatistics` on (moto drops them)."""
    statistics = self._get_param("Statistics", [])
    extended = self._get_param("ExtendedStatistics", [])
    if not statistics and not extended:
        raise InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics")
    datapoints = _get_metric_statistics(
        self.cloudwatch_backend,
        self._get_param("Namespace"),
        self._get_param("MetricName"),
        self._get_param("StartTime"),
        self._get_param("EndTime"),
        self._get_int_param("Period"),
        statistics,
        dimensions=self._get_param("Dimensions", []),
        unit=self._get_param("Unit"),
        extended_stats=extended,
    )
    return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": datapoints})
