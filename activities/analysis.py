"""The canary analysis activity: one interval's metrics for the canary and the baseline, read
from CloudWatch in one GetMetricData request, then judged (`ecs_canary.judge`).

The judgement is data, not an exception: a `fail` is a verdict the workflow acts on. Errors
are for the infrastructure: AWS's, mapped by `activities.aws.aws_errors` (transient ones
retry, the rest fail at once with AWS's code). Sync, like the other AWS activities: the worker
runs it in its thread pool; a cancel stops it before its next AWS request
(`activities.cancellation`), and the judge itself takes milliseconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from activities.aws import AwsClients, aws_errors
from activities.cancellation import sync_activity
from activities.polling import activity_logger
from ecs_canary.analysis import IntervalJudgement, MetricSamples
from ecs_canary.analysis_queries import JudgeIntervalInput, query_id


def read_samples(cloudwatch: Any, request: JudgeIntervalInput) -> list[MetricSamples]:
    """Each metric's per-period values on both sides over [started_at, ended_at), in time
    order; a period with no data has no value (CloudWatch leaves it out)."""
    queries = request.metric_data_queries()
    points: dict[str, list[tuple[datetime, float]]] = {query["Id"]: [] for query in queries}
    params: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": request.started_at,
        "EndTime": request.ended_at,
        "ScanBy": "TimestampAscending",
    }
    while True:
        with aws_errors("GetMetricData"):
            response = cloudwatch.get_metric_data(**params)
        for result in response.get("MetricDataResults", []):
            pairs = zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
            points[result["Id"]].extend((at, float(value)) for at, value in pairs)
        if not response.get("NextToken"):
            break
        params["NextToken"] = response["NextToken"]
    return [
        MetricSamples(
            metric=metric,
            canary=_in_time_order(points[query_id("canary", index)]),
            baseline=_in_time_order(points[query_id("baseline", index)]),
        )
        for index, metric in enumerate(request.settings.metrics)
    ]


def _in_time_order(points: list[tuple[datetime, float]]) -> list[float]:
    return [value for _, value in sorted(points, key=lambda point: point[0])]


class AnalysisActivities:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @sync_activity
    def judge_interval(self, request: JudgeIntervalInput) -> IntervalJudgement:
        """Read the interval's metrics for both services and judge them."""
        log = activity_logger().bind(
            cluster=request.cluster, service=request.service, interval=request.index
        )
        samples = read_samples(self._clients.cloudwatch(request.region), request)
        # The judge's scipy costs ~0.85 s of CPU to import: a worker pays it at its first
        # judgement rather than at every start (most runs have no canary analysis).
        from ecs_canary import judge

        judgement = judge.judge_interval(samples, request.settings)
        log.info(
            f"Analysis interval {request.index}: score {judgement.score:.0f}, {judgement.verdict}"
        )
        return judgement
