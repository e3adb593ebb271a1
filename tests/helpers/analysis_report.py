"""A hand-made canary analysis, as the `status` query carries it, for the report's tests: two
intervals of three metrics, the first passing, the second failing on its critical error rate
while its CPU has no data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_canary.analysis import AnalysisInterval, AnalysisStatus, MetricJudgement, Verdict

STARTED = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
PERIOD_SECONDS = 30
PERIODS = 10
WORKFLOW_ID = "ecs-canary/prod/myapp"


def _metric(
    name: str, group: str, canary: list[float], baseline: list[float], **judged: Any
) -> MetricJudgement:
    fields: dict[str, Any] = {
        "canary": sorted(canary)[len(canary) // 2] if canary else None,
        "baseline": sorted(baseline)[len(baseline) // 2],
        "shift_percent": 0.0,
        "p_value": 0.5,
        "classification": "pass",
        "passed": True,
        "data_points": min(len(canary), len(baseline)),
        **judged,
    }
    return MetricJudgement(
        name=name,
        group=group,
        canary_values=canary,
        baseline_values=baseline,
        **fields,
    )


def _wave(base: float, step: float) -> list[float]:
    return [base + step * (index % 3) for index in range(PERIODS)]


def _interval(
    index: int, score: float, verdict: Verdict, metrics: list[MetricJudgement]
) -> AnalysisInterval:
    started = STARTED + timedelta(seconds=(index - 1) * PERIOD_SECONDS * PERIODS)
    return AnalysisInterval(
        index=index,
        started_at=started,
        ended_at=started + timedelta(seconds=PERIOD_SECONDS * PERIODS),
        score=score,
        verdict=verdict,
        metrics=metrics,
    )


def sample_analysis() -> AnalysisStatus:
    first = [
        _metric("5xx-rate", "errors", _wave(0, 0.001), _wave(0, 0.001), critical=True),
        _metric("p99-latency", "latency", _wave(0.1, 0.004), _wave(0.1, 0.005), shift_percent=-1.0),
        _metric("cpu", "cpu", _wave(20, 1), _wave(20, 1.2)),
    ]
    second = [
        _metric(
            "5xx-rate",
            "errors",
            _wave(0.05, 0.01),
            _wave(0, 0.001),
            critical=True,
            shift_percent=4900.0,
            p_value=0.0001,
            classification="high",
            passed=False,
        ),
        _metric("p99-latency", "latency", _wave(0.1, 0.004), _wave(0.1, 0.005)),
        _metric(
            "cpu",
            "cpu",
            [],
            _wave(20, 1),
            shift_percent=None,
            p_value=None,
            classification="nodata",
            passed=False,
        ),
    ]
    return AnalysisStatus(
        state="failed",
        score=0.0,
        verdict="fail",
        period_seconds=PERIOD_SECONDS,
        intervals_planned=3,
        baseline_service="myappBaseline",
        intervals=[_interval(1, 100.0, "pass", first), _interval(2, 0.0, "fail", second)],
    )
