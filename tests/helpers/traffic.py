"""The emulator's simulated traffic as tests see it: turning it on, its metric clock, and the
metrics it writes, read back with boto3's GetMetricData.

Imported by module (`from tests.helpers.traffic import ...`): only tests of traffic and canary
analysis need it. The e2e emulator runs without traffic; `traffic_at` turns it on for a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers.ecs import CLUSTER
from tests.helpers.waiting import wait_until_sync

APPLICATION = "ECS/Emulator"
ELB = "AWS/ApplicationELB"
INSIGHTS = "ECS/ContainerInsights"


@contextmanager
def traffic_at(emulator: Any, rps: float) -> Iterator[None]:
    """`rps` requests per second to every entry point for the block; off again afterwards
    (the e2e emulator's setting), whatever the block did."""
    emulator.admin.settings(traffic_rps=rps)
    try:
        yield
    finally:
        emulator.admin.settings(traffic_rps=0.0)


def clock_second(emulator: Any) -> int:
    """The last whole second (since the epoch) the emulator's traffic loop is done with."""
    second: int | None = emulator.admin.info()["traffic"]["second"]
    return -1 if second is None else second


def wait_seconds_done(emulator: Any, after: int, timeout: float = 15.0) -> int:
    """Wait until the traffic loop is done with second `after` (sent, or skipped without
    traffic); returns the second it is done with."""
    return int(wait_until_sync(lambda: (s := clock_second(emulator)) >= after and s, timeout))


def settled(emulator: Any) -> datetime:
    """An EndTime before which every second's metrics are written: queries that end there
    answer the same however often they are asked."""
    return datetime.fromtimestamp(clock_second(emulator) + 1, UTC)


def service_dimensions(service: str, cluster: str = CLUSTER) -> dict[str, str]:
    """`ECS/Emulator` and `ECS/ContainerInsights` dimensions of a service."""
    return {"ClusterName": cluster, "ServiceName": service}


def elb_dimension(arn: str) -> str:
    """CloudWatch's dimension value of a target group or load balancer ARN:
    `targetgroup/<name>/<id>` or `app/<name>/<id>`."""
    return arn.split(":", 5)[5].removeprefix("loadbalancer/")


def metric_query(
    query_id: str, namespace: str, metric: str, dimensions: dict[str, str], stat: str, period: int
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": period,
            "Stat": stat,
        },
    }


def datapoints(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    stat: str,
    end: datetime,
    period: int = 1,
    seconds_back: int = 120,
) -> list[float]:
    """One statistic per period of the `seconds_back` seconds before `end`, oldest first."""
    (result,) = cloudwatch.get_metric_data(
        MetricDataQueries=[metric_query("q", namespace, metric, dimensions, stat, period)],
        StartTime=end - timedelta(seconds=seconds_back),
        EndTime=end,
        ScanBy="TimestampAscending",
    )["MetricDataResults"]
    return [float(value) for value in result["Values"]]


def total(
    cloudwatch: Any, namespace: str, metric: str, dimensions: dict[str, str], end: datetime
) -> float:
    """The metric's `Sum` over the two minutes before `end`."""
    return sum(datapoints(cloudwatch, namespace, metric, dimensions, "Sum", end))


def wait_for_requests(
    emulator: Any,
    cloudwatch: Any,
    namespace: str,
    dimensions: dict[str, str],
    at_least: float,
    timeout: float = 30.0,
) -> datetime:
    """Wait until `RequestCount` of `dimensions` sums to `at_least` before a `settled` end;
    returns that end, for reading every metric over the same seconds."""

    def enough() -> datetime | None:
        end = settled(emulator)
        count = total(cloudwatch, namespace, "RequestCount", dimensions, end)
        return end if count >= at_least else None

    return wait_until_sync(enough, timeout, every=0.25)  # type: ignore[no-any-return]
