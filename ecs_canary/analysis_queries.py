"""Which CloudWatch series an analysis interval reads, for the canary and for the baseline.

A metric's dimension values may hold placeholders (`ecs_canary.analysis.PLACEHOLDERS`), filled
in once per side: `{service}` and `{cluster}` by name, `{target_group}` and `{load_balancer}` in
the form CloudWatch's `AWS/ApplicationELB` dimensions take (`targetgroup/<name>/<id>`,
`app/<name>/<id>`), derived from the ARNs the request already holds, so no AWS call is needed.
Pure functions and the activity's input, kept apart from the activity so that the workflow can
build the input and the tests can read the queries without CloudWatch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecs_canary.analysis import AnalysisMetric, AnalysisSettings
from ecs_canary.strict import StrictModel


def cluster_name(cluster: str) -> str:
    """`arn:aws:ecs:...:cluster/ecs-canary` or `ecs-canary` -> `ecs-canary` (ClusterName)."""
    return cluster.rsplit("cluster/", 1)[-1]


def target_group_dimension(target_group_arn: str) -> str:
    """`arn:...:targetgroup/myapp-tg/73e2d6bc24d8a067` -> `targetgroup/myapp-tg/73e2d6bc24d8a067`
    (`TargetGroup`)."""
    return target_group_arn.split(":", 5)[5]


def load_balancer_dimension(listener_rule_arn: str) -> str:
    """`arn:...:listener-rule/app/myapp-alb/50dc6c495c0c9188/<listener>/<rule>` ->
    `app/myapp-alb/50dc6c495c0c9188`: the rule's load balancer, as `LoadBalancer` names it."""
    path = listener_rule_arn.split(":listener-rule/", 1)[1]
    return "/".join(path.split("/")[:3])


def placeholder_values(
    service: str,
    cluster: str,
    target_group_arn: str | None = None,
    listener_rule_arn: str | None = None,
) -> dict[str, str]:
    """What each placeholder stands for on one side. The target group ones only where the
    side has a target group of its own (the request is refused otherwise if a metric uses
    them)."""
    values = {"{service}": service, "{cluster}": cluster_name(cluster)}
    if target_group_arn is not None and listener_rule_arn is not None:
        values["{target_group}"] = target_group_dimension(target_group_arn)
        values["{load_balancer}"] = load_balancer_dimension(listener_rule_arn)
    return values


def filled_dimensions(metric: AnalysisMetric, values: dict[str, str]) -> list[dict[str, str]]:
    """The metric's dimensions for one side, in GetMetricData's shape."""
    filled = []
    for name, value in metric.dimensions.items():
        for placeholder, replacement in values.items():
            value = value.replace(placeholder, replacement)
        filled.append({"Name": name, "Value": value})
    return filled


def query_id(side: str, index: int) -> str:
    """GetMetricData's query ids start with a lowercase letter: `canary_0`, `baseline_0`."""
    return f"{side}_{index}"


class JudgeIntervalInput(StrictModel):
    """One interval to read and judge: [started_at, ended_at) of every metric, per side."""

    region: str | None
    cluster: str
    service: str
    settings: AnalysisSettings
    # Placeholder -> value, per side (see `placeholder_values`).
    canary: dict[str, str]
    baseline: dict[str, str]
    index: int
    started_at: datetime
    ended_at: datetime

    def metric_data_queries(self) -> list[dict[str, Any]]:
        """One GetMetricData query per metric and side, ids `canary_<i>` / `baseline_<i>`."""
        return [
            {
                "Id": query_id(side, index),
                "MetricStat": {
                    "Metric": {
                        "Namespace": metric.namespace,
                        "MetricName": metric.metric_name,
                        "Dimensions": filled_dimensions(metric, values),
                    },
                    "Period": self.settings.period_seconds,
                    "Stat": metric.stat,
                },
                "ReturnData": True,
            }
            for side, values in (("canary", self.canary), ("baseline", self.baseline))
            for index, metric in enumerate(self.settings.metrics)
        ]
