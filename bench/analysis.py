"""Measure 8, canary analysis: how often the judge (`ecs_canary.judge`) gets it right, and how
long it takes. CPU only: no emulator, no Temporal.

Accuracy: INTERVALS simulated intervals per case, each PERIODS periods per side of
REQUESTS_PER_PERIOD requests, every request drawn from the emulator's own answer model
(`ecs_emulator.answers.AnswerModel`, the one its traffic uses): a task's image tag gives its
model (`AnswerModel.from_images`), the model gives each request's latency (`latencies_ms`),
each period's 5XX count (`errors`) and each period's CPU (`cpu`). Per period and side the judge
sees the 5XX rate (5XX / requests), the p99 of the period's latencies and the CPU. Cases:

- A/A: canary and baseline both run the old image;
- `errors-1` against the 0.1 % base, judged with a critical 5XX-rate metric;
- `latency-25`, +25 ms on every answer (the median goes from 50 ms to 75 ms), judged with a
  p99 latency metric.

Speed: the median time of `judge_interval` for JUDGE_METRICS metrics of PERIODS periods a side.

    .venv/bin/python -m bench.analysis    # this measure alone; prints its section
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecs_canary.analysis import (
    AnalysisMetric,
    AnalysisSettings,
    IntervalJudgement,
    MetricSamples,
)
from ecs_canary.judge import judge_interval
from ecs_emulator.answers import AnswerModel

INTERVALS = 200
PERIODS = 60
REQUESTS_PER_PERIOD = 100
JUDGE_METRICS = 20
JUDGE_REPEATS = 200
JUDGE_MAX_MS = 20.0
SEED = 24
OLD_IMAGE = "myapp:1.0"

ERROR_RATE = AnalysisMetric(
    name="5xx-rate",
    namespace="ECS/Emulator",
    metric_name="Errors",
    stat="Sum",
    critical=True,
    group="errors",
)
# +25 ms on a p99 of about 100 ms is a 25 % shift: right at the default tolerance, so half the
# regressions would pass it. A p99 metric that should catch a 25 ms regression says so.
P99_TOLERANCE = 0.1
P99_LATENCY = AnalysisMetric(
    name="p99-latency",
    namespace="ECS/Emulator",
    metric_name="Latency",
    stat="p99",
    tolerance=P99_TOLERANCE,
    group="latency",
)
CPU = AnalysisMetric(
    name="cpu",
    namespace="ECS/ContainerInsights",
    metric_name="CpuUtilized",
    stat="Average",
    group="resources",
)
# Three groups, weighted so that a bad CPU alone (80) is marginal, a bad latency alone (60) a
# failure, and a bad error rate (critical) a failure whatever else.
SETTINGS = AnalysisSettings(
    period_seconds=60,
    metrics=[ERROR_RATE, P99_LATENCY, CPU],
    group_weights={"errors": 40, "latency": 40, "resources": 20},
)

# What a period's requests give each metric, by its CloudWatch metric name.
Reading = Callable[[AnswerModel, np.random.Generator], float]
READINGS: dict[str, Reading] = {
    "Errors": lambda model, rng: model.errors(rng, REQUESTS_PER_PERIOD) / REQUESTS_PER_PERIOD,
    "Latency": lambda model, rng: float(
        np.percentile(model.latencies_ms(rng, REQUESTS_PER_PERIOD), 99)
    ),
    "CpuUtilized": lambda model, rng: model.cpu(rng),
}


@dataclass(frozen=True)
class Case:
    name: str
    canary_image: str
    # "false alarm": the canary is as good as the baseline; "detection": it is worse.
    kind: str
    target: str
    # None for a row shown for comparison only.
    met: Callable[[Counter[str]], bool] | None
    settings: AnalysisSettings = field(default_factory=lambda: SETTINGS)


def _p99_at_default_tolerance() -> AnalysisSettings:
    default = AnalysisMetric.model_fields["tolerance"].default
    p99 = P99_LATENCY.model_copy(update={"tolerance": default})
    return SETTINGS.model_copy(update={"metrics": [ERROR_RATE, p99, CPU]})


CASES = [
    Case(
        "A/A",
        OLD_IMAGE,
        "false alarm",
        "fail <= 1 %, marginal <= 5 %",
        lambda v: v["fail"] <= 0.01 * INTERVALS and v["marginal"] <= 0.05 * INTERVALS,
    ),
    Case(
        "errors-1",
        "myapp:errors-1",
        "detection",
        "fail >= 95 %",
        lambda v: v["fail"] >= 0.95 * INTERVALS,
    ),
    Case(
        "latency-25",
        "myapp:latency-25",
        "detection",
        "fail >= 95 %",
        lambda v: v["fail"] >= 0.95 * INTERVALS,
    ),
    Case(
        "latency-25, p99 at the default tolerance 0.25",
        "myapp:latency-25",
        "detection",
        "- (for comparison)",
        None,
        _p99_at_default_tolerance(),
    ),
]


def simulated_samples(
    canary: AnswerModel,
    baseline: AnswerModel,
    metrics: list[AnalysisMetric],
    rng: np.random.Generator,
    periods: int = PERIODS,
) -> list[MetricSamples]:
    """One interval's per-period values of `metrics`, each period REQUESTS_PER_PERIOD requests
    answered by each side's model."""
    return [
        MetricSamples(
            metric=metric,
            canary=[READINGS[metric.metric_name](canary, rng) for _ in range(periods)],
            baseline=[READINGS[metric.metric_name](baseline, rng) for _ in range(periods)],
        )
        for metric in metrics
    ]


def _verdicts(case: Case, rng: np.random.Generator) -> Counter[str]:
    canary = AnswerModel.from_images([case.canary_image])
    baseline = AnswerModel.from_images([OLD_IMAGE])
    counts: Counter[str] = Counter()
    for _ in range(INTERVALS):
        samples = simulated_samples(canary, baseline, case.settings.metrics, rng)
        judgement = judge_interval(samples, case.settings)
        counts[judgement.verdict] += 1
        counts["nodata"] += _any_nodata(judgement)
    return counts


def _any_nodata(judgement: IntervalJudgement) -> bool:
    return any(metric.classification == "nodata" for metric in judgement.metrics)


def _case_result(case: Case, counts: Counter[str]) -> dict[str, Any]:
    rate = (
        f"fail {100 * counts['fail'] / INTERVALS:.1f} %, "
        f"marginal {100 * counts['marginal'] / INTERVALS:.1f} %"
        if case.kind == "false alarm"
        else f"{100 * counts['fail'] / INTERVALS:.1f} % fail"
    )
    return {
        "case": case.name,
        "intervals": INTERVALS,
        **{verdict: counts[verdict] for verdict in ("pass", "marginal", "fail", "nodata")},
        "rate": f"{case.kind}: {rate}",
        "target": case.target,
        "met": None if case.met is None else case.met(counts),
    }


def judge_times_ms(rng: np.random.Generator) -> list[float]:
    """JUDGE_REPEATS timings of one interval of JUDGE_METRICS metrics (the three kinds in turn),
    the samples drawn beforehand."""
    kinds = [ERROR_RATE, P99_LATENCY, CPU]
    metrics = [
        kinds[index % len(kinds)].model_copy(update={"name": f"metric-{index}"})
        for index in range(JUDGE_METRICS)
    ]
    settings = SETTINGS.model_copy(update={"metrics": metrics, "group_weights": None})
    model = AnswerModel.from_images([OLD_IMAGE])
    samples = simulated_samples(model, model, metrics, rng)
    times = []
    for _ in range(JUDGE_REPEATS):
        began = time.perf_counter()
        judge_interval(samples, settings)
        times.append((time.perf_counter() - began) * 1000)
    return times


def measure() -> dict[str, Any]:
    # A generator per case, so that a case's numbers do not depend on the cases before it.
    cases = [
        _case_result(case, _verdicts(case, np.random.default_rng([SEED, index])))
        for index, case in enumerate(CASES)
    ]
    times = judge_times_ms(np.random.default_rng([SEED, len(CASES)]))
    return {
        "cases": cases,
        "judge_ms": {
            "median": statistics.median(times),
            "p95": float(np.percentile(times, 95)),
            "repeats": JUDGE_REPEATS,
        },
    }


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The target rows (name, measured, met): one per accuracy case, and the judge's time."""
    data = results.get("analysis")
    if not data:
        return []
    rows = [
        (
            f"Canary analysis, {case['case']} over {case['intervals']} intervals: {case['target']}",
            case["rate"],
            case["met"],
        )
        for case in data["cases"]
        if case["met"] is not None
    ]
    median = data["judge_ms"]["median"]
    rows.append(
        (
            f"Canary analysis: judge {JUDGE_METRICS} metrics x {PERIODS} periods a side "
            f"<= {JUDGE_MAX_MS:g} ms (median)",
            f"{median:.1f} ms",
            median <= JUDGE_MAX_MS,
        )
    )
    return rows


def section(results: dict[str, Any]) -> list[str]:
    """BENCHMARKS.md's section 8 (nothing when the measure did not run)."""
    data = results.get("analysis")
    if not data:
        return []
    out = [
        "## 8. Canary analysis\n",
        f"The judge (`ecs_canary/judge.py`) on {INTERVALS} simulated intervals per case, each "
        f"{PERIODS} periods per side of {REQUESTS_PER_PERIOD} requests, every request drawn from "
        "the emulator's own answer model, `ecs_emulator.answers.AnswerModel` (the model its "
        "traffic uses): the image tag gives the model (`AnswerModel.from_images`), and per period "
        "and side the model's `errors` gives the 5XX rate (5XX / requests), its `latencies_ms` "
        "the requests' times, whose 99th percentile (numpy's linear interpolation) is the p99, "
        f"and its `cpu` the CPU. The baseline runs `{OLD_IMAGE}` (latency lognormal, median "
        "50 ms, sigma 0.3; 0.1 % 5XX; CPU 20 % +- 2). numpy's generator, seed "
        f"{SEED}: the same numbers on every run.\n",
        "The analysis: confidence 0.98, `pass_score` 95, `marginal_score` 75, "
        "`min_data_points` 30, group weights errors 40, latency 40, resources 20 (a bad CPU "
        "alone scores 80, marginal; a bad latency 60, fail):",
        f"- `{ERROR_RATE.name}`: 5XX / requests per period, `increase` is bad, critical, "
        "tolerance 0.25;",
        f"- `{P99_LATENCY.name}`: the period's p99, `increase` is bad, tolerance "
        f"{P99_TOLERANCE:g} (+25 ms on a p99 of about 100 ms is a 25 % shift, right at the "
        "default tolerance 0.25; the last row shows what that default would catch);",
        f"- `{CPU.name}`: CPU per period, `increase` is bad, tolerance 0.25.\n",
        "The relative shift is the Hodges-Lehmann shift divided by the baseline's median. Where "
        "the baseline's median is 0 (a 0.1 % 5XX rate over 100 requests is 0 in nine periods of "
        "ten), it is the difference of the means divided by the baseline's mean (by the mean "
        "of both sides pooled when the baseline is 0 in every period; 0 when both are): the "
        "pairwise-difference median stays 0 in about one `errors-1` interval in 20, although "
        "the canary fails ten times as often.\n",
        "| Case | Intervals | pass | marginal | fail | nodata | Detection or false-alarm rate "
        "| Target | Met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["cases"]:
        met = "-" if row["met"] is None else "yes" if row["met"] else "**no**"
        out.append(
            f"| {row['case']} | {row['intervals']} | {row['pass']} | {row['marginal']} "
            f"| {row['fail']} | {row['nodata']} | {row['rate']} | {row['target']} | {met} |"
        )
    timing = data["judge_ms"]
    out.append(
        f"\nJudge time, {JUDGE_METRICS} metrics (the three kinds in turn) x {PERIODS} periods a "
        f"side, one `judge_interval` call timed {timing['repeats']} times in the bench process: "
        f"median {timing['median']:.1f} ms, p95 {timing['p95']:.1f} ms (target <= "
        f"{JUDGE_MAX_MS:g} ms, median). `nodata` counts intervals with a metric short of data "
        "(none here: every side has 60 values).\n"
    )
    return out


if __name__ == "__main__":
    print("\n".join(section({"analysis": measure()})))
    sys.exit(0)
