"""The `metrics` verification step: the canary's CloudWatch metric over the last
`window_seconds`, against a limit and/or the main service's same metric."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from activities.aws import AwsClients, aws_errors
from activities.polling import activity_logger
from activities.steps.common import StepClock, timed_out
from ecs_canary.steps import MetricsStep, MetricsStepInput, StepVerdict

SUMMED_STATS = frozenset({"Sum", "SampleCount"})


def aggregate(stat: str, values: list[float]) -> float:
    """One value for the whole window from the per-period datapoints of `stat`:

    - `Sum`, `SampleCount`: their sum (the window's total);
    - `Average`: their mean (of the periods' averages, not weighted by samples);
    - `Minimum`: the smallest;
    - `Maximum`, percentiles (`p99`, ...) and any other statistic: the largest, the worst
      period (a percentile of the whole window cannot be had from per-period percentiles).
    """
    if stat in SUMMED_STATS:
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    return max(values)


def number(value: float) -> str:
    return f"{value:g}"


def dimensions_for(step: MetricsStep, service: str) -> list[dict[str, str]]:
    return [
        {"Name": name, "Value": value.replace("{service}", service)}
        for name, value in step.dimensions.items()
    ]


class MetricsCheck:
    def __init__(self, clients: AwsClients, request: MetricsStepInput) -> None:
        self.request = request
        self.step = request.step
        self.cloudwatch = clients.cloudwatch(request.region)
        self.clock = StepClock(self.step.timeout_seconds)
        self.log = activity_logger().bind(
            step=self.step.name, namespace=self.step.namespace, metric=self.step.metric_name
        )
        self.what = f"{self.step.metric_name} {self.step.stat} over {self.step.window_seconds}s"

    def run(self) -> StepVerdict:
        self.log.info(f"Checking {self.what} for verification step {self.step.name}")
        announced_wait = False
        while True:
            canary, primary = self._query()
            if canary:
                verdict = self._judge(canary, primary)
                break
            no_data = f"no data for {self.what} ({self._canary_dimensions()})"
            if self.step.on_no_data == "fail":
                verdict = StepVerdict(passed=False, summary=no_data)
                break
            if self.step.on_no_data == "pass":
                verdict = StepVerdict(passed=True, summary=f"{no_data} (on_no_data: pass)")
                break
            if self.clock.expired:
                verdict = timed_out(self.step.timeout_seconds, no_data)
                break
            if not announced_wait:
                self.log.info(f"Waiting for data: {no_data}")
                announced_wait = True
            self.clock.beat()
            self.clock.sleep(self.request.poll_interval_seconds)
        self.log.info(f"Verification step {self.step.name}: {verdict.summary}")
        return verdict

    def _canary_dimensions(self) -> str:
        dimensions = dimensions_for(self.step, self.request.canary_service)
        return ", ".join(f"{d['Name']}={d['Value']}" for d in dimensions) or "no dimensions"

    def _query(self) -> tuple[list[float], list[float]]:
        """The canary's datapoints and, with a ratio limit, the main service's."""
        step = self.step
        services = {"canary": self.request.canary_service}
        if step.max_ratio_to_primary is not None:
            services["primary"] = self.request.main_service
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": step.namespace,
                        "MetricName": step.metric_name,
                        "Dimensions": dimensions_for(step, service),
                    },
                    "Period": step.period_seconds,
                    "Stat": step.stat,
                },
                "ReturnData": True,
            }
            for query_id, service in services.items()
        ]
        end = datetime.now(UTC)
        params: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": end - timedelta(seconds=step.window_seconds),
            "EndTime": end,
        }
        values: dict[str, list[float]] = {query_id: [] for query_id in services}
        while True:
            with aws_errors("GetMetricData"):
                response = self.cloudwatch.get_metric_data(**params)
            for result in response.get("MetricDataResults", []):
                values.setdefault(result["Id"], []).extend(
                    float(v) for v in result.get("Values", []) if v is not None
                )
            if not response.get("NextToken"):
                break
            params["NextToken"] = response["NextToken"]
        return values["canary"], values.get("primary", [])

    def _judge(self, canary_values: list[float], primary_values: list[float]) -> StepVerdict:
        step = self.step
        canary = aggregate(step.stat, canary_values)
        parts = [f"canary {number(canary)}"]
        limits, problems = [], []
        if step.max_value is not None:
            limits.append(f"limit {number(step.max_value)}")
            if canary > step.max_value:
                problems.append("canary above the limit")
        if step.max_ratio_to_primary is not None:
            primary = aggregate(step.stat, primary_values) if primary_values else 0.0
            parts.append(f"primary {number(primary)}" + ("" if primary_values else " (no data)"))
            ratio = step.max_ratio_to_primary
            limits.append(f"ratio ≤ {number(ratio)}")
            if canary > primary * ratio:
                problems.append(f"canary above {number(ratio)} × primary")
        summary = f"{self.what}: {', '.join(parts)} ({', '.join(limits)})"
        if problems:
            summary += "; " + "; ".join(problems)
        return StepVerdict(passed=not problems, summary=summary)
