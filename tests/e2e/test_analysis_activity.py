"""The canary analysis activity against the emulator's CloudWatch over HTTP with boto3: one
GetMetricData request for every metric of both services, placeholders filled in per side, one
value per period in time order; then the judge's word on what it read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.analysis import AnalysisActivities, read_samples
from activities.aws import AwsClients
from bench.analysis_e2e import service_metric
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
ANALYSIS = AnalysisActivities(AwsClients(ecs_calls_per_second=100))


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


def at_one_second(*metrics: dict[str, Any], **fields: Any) -> AnalysisSettings:
    return AnalysisSettings.model_validate({"period_seconds": 1, "metrics": metrics, **fields})


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
    requests_metric = {
        "name": "requests",
        "namespace": "AWS/ApplicationELB",
        "metric_name": "RequestCount",
        "dimensions": {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}"},
        "stat": "Sum",
        "direction": "either",
    }
    settings = at_one_second(service_metric("latency", "ECS/Emulator", "Latency"), requests_metric)

    latency, requests = read_samples(cloudwatch, interval(settings, started))

    assert (latency.metric.name, requests.metric.name) == ("latency", "requests")
    assert latency.canary == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert latency.baseline == [200.0, 201.0, 202.0, 203.0, 204.0]
    assert requests.canary == [14.0] * PERIODS
    assert requests.baseline == [18.0] * PERIODS


def test_a_metric_with_no_data_reads_as_no_values(cloudwatch):
    settings = at_one_second(service_metric("cpu", "ECS/ContainerInsights", "CpuUtilized"))
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)

    (cpu,) = read_samples(cloudwatch, interval(settings, started))

    assert (cpu.canary, cpu.baseline) == ([], [])


def _latency_settings(min_data_points: int) -> AnalysisSettings:
    latency = service_metric("latency", "ECS/Emulator", "Latency")
    return at_one_second(latency, min_data_points=min_data_points)


def _put_latencies(cloudwatch: Any, started: datetime, canary_added_ms: float) -> None:
    """20 seconds of per-second latency averages around 50 ms on both sides; the canary's
    `canary_added_ms` slower."""
    rng = np.random.default_rng(24)
    seconds = [started + timedelta(seconds=n) for n in range(20)]
    for service, added in (("myappCanary", canary_added_ms), ("myappBaseline", 0.0)):
        values = rng.normal(50.0, 2.0, size=len(seconds)) + added
        dimensions = {"ClusterName": CLUSTER, "ServiceName": service}
        put(
            cloudwatch,
            "ECS/Emulator",
            "Latency",
            dimensions,
            dict(zip(seconds, values, strict=True)),
        )


@pytest.mark.parametrize(("added_ms", "verdict"), [(0.0, "pass"), (25.0, "fail")])
def test_the_activity_judges_the_interval_it_read(cloudwatch, added_ms, verdict):
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    _put_latencies(cloudwatch, started, added_ms)
    request = interval(_latency_settings(min_data_points=15), started).model_copy(
        update={"ended_at": started + timedelta(seconds=20)}
    )

    judged = ActivityEnvironment().run(ANALYSIS.judge_interval, request)

    assert judged.verdict == verdict
    (latency,) = judged.metrics
    assert latency.data_points == 20
    assert latency.classification == ("pass" if verdict == "pass" else "high")


def test_too_few_periods_are_nodata(cloudwatch):
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    _put_latencies(cloudwatch, started, 0.0)
    request = interval(_latency_settings(min_data_points=30), started)

    judged = ActivityEnvironment().run(ANALYSIS.judge_interval, request)

    assert (judged.verdict, judged.metrics[0].classification) == ("fail", "nodata")
    assert judged.metrics[0].data_points == PERIODS


def test_cloudwatchs_refusal_fails_the_activity_with_its_code(cloudwatch):
    """An empty window (both ends within one second, as CloudWatch counts them)."""
    started = datetime.now(UTC).replace(microsecond=100_000)
    request = interval(_latency_settings(min_data_points=1), started).model_copy(
        update={"ended_at": started + timedelta(milliseconds=500)}
    )

    with pytest.raises(ApplicationError) as refused:
        ActivityEnvironment().run(ANALYSIS.judge_interval, request)

    assert refused.value.type == "ValidationError" and refused.value.non_retryable
    assert refused.value.message.startswith("GetMetricData failed: ValidationError: ")
