"""Canary analysis: what a request asks for (`verification.analysis`) and what the judge says.

These models are the contract between the request, the judge (`ecs_canary.judge`), the
workflow that runs the intervals, `status` and the report (`starter.py analysis`). The judge
compares the canary with a fresh baseline of the old version, started beside it at the same
size and given the same share of traffic, as Kayenta does: a statistical test per metric, then
a weighted score per interval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from ecs_canary.strict import MAX_SECONDS, StrictModel

Direction = Literal["increase", "decrease", "either"]
# `high`/`low`: the test rejects and the shift is beyond the tolerance; whether that is bad
# depends on the metric's direction. `nodata`: too few data points on a side; it never passes.
Classification = Literal["pass", "high", "low", "nodata"]
Verdict = Literal["pass", "marginal", "fail"]
AnalysisState = Literal["waiting", "running", "passed", "marginal", "failed", "stopped"]

# Placeholders a dimension value may hold, filled in once for the canary and once for the
# baseline. The target group and load balancer ones need a target group of each service's own.
PLACEHOLDERS = ("{service}", "{cluster}", "{target_group}", "{load_balancer}")
TARGET_GROUP_PLACEHOLDERS = ("{target_group}", "{load_balancer}")
MAX_ANALYSIS_METRICS = 50


class AnalysisMetric(StrictModel):
    """One CloudWatch metric read for both services and compared period by period."""

    name: str = Field(min_length=1, max_length=128)
    namespace: str = Field(min_length=1, max_length=255)
    metric_name: str = Field(min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    stat: str = Field(min_length=1, max_length=32)
    direction: Direction = "increase"
    tolerance: float = Field(0.25, ge=0, le=100)
    critical: bool = False
    group: str = Field("default", min_length=1, max_length=128)

    def uses_target_group(self) -> bool:
        return any(
            placeholder in value
            for value in self.dimensions.values()
            for placeholder in TARGET_GROUP_PLACEHOLDERS
        )


class AnalysisSettings(StrictModel):
    """`verification.analysis`: turns canary analysis on (a baseline beside the canary)."""

    interval_seconds: float = Field(300, gt=0, le=MAX_SECONDS)
    intervals: int = Field(3, ge=1, le=1000)
    period_seconds: int = Field(60, ge=1, le=86400)
    confidence: float = Field(0.98, gt=0.5, lt=1)
    pass_score: float = Field(95, ge=0, le=100)
    marginal_score: float = Field(75, ge=0, le=100)
    on_marginal: Literal["gate", "reject"] = "gate"
    min_data_points: int = Field(30, ge=1)
    baseline_target_group_arn: str | None = Field(None, min_length=1, max_length=2048)
    metrics: list[AnalysisMetric] = Field(min_length=1, max_length=MAX_ANALYSIS_METRICS)
    group_weights: dict[str, float] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisSettings:
        if self.marginal_score > self.pass_score:
            raise ValueError("marginal_score must not be above pass_score")
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError("metric names must be distinct")
        if self.group_weights is not None:
            groups = {metric.group for metric in self.metrics}
            if set(self.group_weights) != groups:
                raise ValueError(
                    f"group_weights must name exactly the metrics' groups: {sorted(groups)}"
                )
            if any(weight < 0 for weight in self.group_weights.values()):
                raise ValueError("group_weights must not be negative")
            if abs(sum(self.group_weights.values()) - 100) > 1e-6:
                raise ValueError("group_weights must sum to 100")
        return self

    def weights(self) -> dict[str, float]:
        """Each group's weight; equal shares of 100 when the request sets none."""
        if self.group_weights is not None:
            return dict(self.group_weights)
        groups = sorted({metric.group for metric in self.metrics})
        return {group: 100 / len(groups) for group in groups}


class MetricSamples(StrictModel):
    """One metric's per-period values for an interval, canary and baseline, in time order."""

    metric: AnalysisMetric
    canary: list[float]
    baseline: list[float]


class MetricJudgement(StrictModel):
    """The judge's word on one metric in one interval. `canary` and `baseline` are medians
    (None without data); `shift_percent` is the Hodges-Lehmann shift relative to the baseline's
    median (where that median is 0, the shift of the means; see `ecs_canary.judge`), None
    without data; the per-period values (finite ones, in time order) are kept for the report's
    charts."""

    name: str
    group: str
    canary: float | None
    baseline: float | None
    shift_percent: float | None
    p_value: float | None
    classification: Classification
    # Whether the metric counts as passing: `pass`, or a shift in the harmless direction.
    passed: bool
    critical: bool = False
    # The fewer of the two sides' data points.
    data_points: int
    canary_values: list[float] = Field(default_factory=list)
    baseline_values: list[float] = Field(default_factory=list)


class IntervalJudgement(StrictModel):
    score: float
    verdict: Verdict
    metrics: list[MetricJudgement]


class AnalysisInterval(IntervalJudgement):
    index: int
    started_at: datetime
    ended_at: datetime


class AnalysisStatus(StrictModel):
    """`status.analysis`: where the analysis stands, every interval judged so far."""

    state: AnalysisState = "waiting"
    score: float | None = None
    verdict: Verdict | None = None
    period_seconds: int
    intervals_planned: int
    baseline_service: str
    intervals: list[AnalysisInterval] = Field(default_factory=list)
