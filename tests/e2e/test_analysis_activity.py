"""The canary analysis activity's read of CloudWatch, against the emulator's CloudWatch over
HTTP with boto3: one GetMetricData request for every metric of both services, placeholders
filled in per side, one value per period in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from activities.analysis import read_samples
from ecs_canary.analysis import AnalysisSettings
from ecs_canary.analysis_queries import JudgeIntervalInput, placeholder_values
from tests.helpers import CLUSTER, REGION

CANARY_GROUP = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/myapp-canary-tg/4f3b"
)
BASELINE_GROUP = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/myapp-base-tg/9a8b"
)
RULE = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/myapp-alb/50dc/f2f7/9683"
)
PERIODS = 5


def put(
    cloudwatch: Any,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    values: dict[datetime, float],
) -> None:
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [
                    {"Name": name, "Value": value} for name, value in dimensions.items()
                ],
                "Timestamp": at,
                "Value": value,
                "StorageResolution": 1,
            }
            for at, value in values.items()
        ],
    )


def interval(settings: AnalysisSettings, started: datetime) -> JudgeIntervalInput:
    return JudgeIntervalInput(
        region=REGION,
        cluster=CLUSTER,
        service="myapp",
        settings=settings,
        canary=placeholder_values("myappCanary", CLUSTER, CANARY_GROUP, RULE),
        baseline=placeholder_values("myappBaseline", CLUSTER, BASELINE_GROUP, RULE),
        index=1,
        started_at=started,
        ended_at=started + timedelta(seconds=PERIODS),
    )


def test_one_request_reads_every_metric_of_both_services_per_period_in_time_order(cloudwatch):
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    seconds = [started + timedelta(seconds=n) for n in range(PERIODS)]
    for service, base in (("myappCanary", 100.0), ("myappBaseline", 200.0)):
        dimensions = {"ClusterName": CLUSTER, "ServiceName": service}
        put(
            cloudwatch,
            "ECS/Emulator",
            "Latency",
            dimensions,
            {at: base + n for n, at in enumerate(seconds)},
        )
    for group, count in (
        ("targetgroup/myapp-canary-tg/4f3b", 7.0),
        ("targetgroup/myapp-base-tg/9a8b", 9.0),
    ):
        dimensions = {"TargetGroup": group, "LoadBalancer": "app/myapp-alb/50dc"}
        # Two requests' worth per second: a period's Sum adds them up.
        for at in seconds:
            put(cloudwatch, "AWS/ApplicationELB", "RequestCount", dimensions, {at: count})
            put(cloudwatch, "AWS/ApplicationELB", "RequestCount", dimensions, {at: count})
    # Outside the interval: not read.
    put(
        cloudwatch,
        "ECS/Emulator",
        "Latency",
        {"ClusterName": CLUSTER, "ServiceName": "myappCanary"},
        {started + timedelta(seconds=PERIODS): 999.0},
    )
    settings = AnalysisSettings(
        period_seconds=1,
        metrics=[
            {
                "name": "latency",
                "namespace": "ECS/Emulator",
                "metric_name": "Latency",
                "dimensions": {"ClusterName": "{cluster}", "ServiceName": "{service}"},
                "stat": "Average",
            },
            {
                "name": "requests",
                "namespace": "AWS/ApplicationELB",
                "metric_name": "RequestCount",
                "dimensions": {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"},
                "stat": "Sum",
                "direction": "either",
            },
        ],
    )

    latency, requests = read_samples(cloudwatch, interval(settings, started))

    assert (latency.metric.name, requests.metric.name) == ("latency", "requests")
    assert latency.canary == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert latency.baseline == [200.0, 201.0, 202.0, 203.0, 204.0]
    assert requests.canary == [14.0] * PERIODS
    assert requests.baseline == [18.0] * PERIODS


def test_a_metric_with_no_data_reads_as_no_values(cloudwatch):
    settings = AnalysisSettings(
        period_seconds=1,
        metrics=[
            {
                "name": "cpu",
                "namespace": "ECS/ContainerInsights",
                "metric_name": "CpuUtilized",
                "dimensions": {"ClusterName": "{cluster}", "ServiceName": "{service}"},
                "stat": "Average",
            }
        ],
    )
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)

    (cpu,) = read_samples(cloudwatch, interval(settings, started))

    assert (cpu.canary, cpu.baseline) == ([], [])
