"""A stand-in for the canary analysis activity, registered by the real one's name
(`judge_interval`): a test scripts each interval's verdict and reads back what was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ecs_canary.analysis import IntervalJudgement, MetricJudgement, Verdict
from ecs_canary.analysis_queries import JudgeIntervalInput

# The score each scripted verdict comes with (pass_score 95, marginal_score 75 by default).
SCORES: dict[Verdict, float] = {"pass": 100.0, "marginal": 80.0, "fail": 40.0}


def metric(name: str, passed: bool, critical: bool = False) -> MetricJudgement:
    """A metric as the judge reports it: latency 48 % up with a tiny p-value when it did not
    pass, flat otherwise."""
    return MetricJudgement(
        name=name,
        group="default",
        canary=74.0 if not passed else 50.2,
        baseline=50.0,
        shift_percent=48.0 if not passed else 0.4,
        p_value=0.0001 if not passed else 0.61,
        classification="pass" if passed else "high",
        passed=passed,
        critical=critical,
        data_points=60,
    )


def judgement(verdict: Verdict) -> IntervalJudgement:
    """An interval with that verdict: `p99-latency` fails unless it passes."""
    return IntervalJudgement(
        score=SCORES[verdict],
        verdict=verdict,
        metrics=[metric("errors", passed=True), metric("p99-latency", passed=verdict == "pass")],
    )


@dataclass
class FakeJudge:
    # interval index -> its verdict, or "error" (CloudWatch refuses); unlisted intervals pass.
    script: dict[int, Verdict | Literal["error"]] = field(default_factory=dict)
    inputs: list[JudgeIntervalInput] = field(default_factory=list)

    def activity(self) -> Any:
        fake = self

        @activity.defn(name="judge_interval")
        async def judge_interval(request: JudgeIntervalInput) -> IntervalJudgement:
            fake.inputs.append(request)
            scripted = fake.script.get(request.index, "pass")
            if scripted == "error":
                raise ApplicationError(
                    "GetMetricData failed: AccessDenied: not authorized",
                    type="AccessDenied",
                    non_retryable=True,
                )
            return judgement(scripted)

        return judge_interval
