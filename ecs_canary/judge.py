"""The canary analysis judge: one interval's per-period values, canary against baseline, turned
into a classification per metric, a weighted score and a verdict (Kayenta's method).

Pure and deterministic, with no I/O: the same samples always give the same judgement, so the
workflow may call it from an activity and record the answer, and the benchmark may call it
thousands of times.

Per metric:
- the test is Mann-Whitney U, two-sided (scipy), which rejects when p < 1 - confidence;
- the effect is the relative shift (see `relative_shift`);
- the metric is `high` or `low` only if the test rejects and the relative shift is beyond the
  metric's tolerance; `increase` makes `high` bad, `decrease` makes `low` bad, `either` both;
- fewer than `min_data_points` values on either side (NaN and infinities ignored) is `nodata`,
  which never passes.

Per interval, the score is the sum over groups of weight x (passing metrics / metrics in the
group), 0 when a critical metric is bad, and the verdict is `pass` at `pass_score` or more,
`marginal` at `marginal_score` or more, else `fail`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecs_canary.analysis import (
    AnalysisMetric,
    AnalysisSettings,
    Classification,
    Direction,
    IntervalJudgement,
    MetricJudgement,
    MetricSamples,
    Verdict,
)

_BAD: dict[Direction, frozenset[Classification]] = {
    "increase": frozenset({"high"}),
    "decrease": frozenset({"low"}),
    "either": frozenset({"high", "low"}),
}


def judge_interval(
    samples: Sequence[MetricSamples], settings: AnalysisSettings
) -> IntervalJudgement:
    """The judgement of one interval: `samples` holds one entry per metric of `settings`, in
    any order; the judgement lists the metrics in the order of `samples`."""
    _check_covers(samples, settings)
    sides = [(_finite(sample.canary), _finite(sample.baseline)) for sample in samples]
    judged = [
        index
        for index, (canary, baseline) in enumerate(sides)
        if min(canary.size, baseline.size) >= settings.min_data_points
    ]
    p_values = dict(zip(judged, _p_values([sides[index] for index in judged]), strict=True))
    metrics = [
        _classify(sample.metric, *sides[index], p_values.get(index), settings)
        for index, sample in enumerate(samples)
    ]
    score = interval_score(metrics, settings)
    return IntervalJudgement(score=score, verdict=verdict(score, settings), metrics=metrics)


def _p_values(sides: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """The two-sided Mann-Whitney p-value of each (canary, baseline) pair. Pairs of the same
    sizes go to scipy in one call: at 60 values a side, scipy's per-call overhead costs far
    more than the test itself, and an interval's metrics usually share their sizes."""
    # scipy.stats takes half a second to import, loaded here with the first judgement rather
    # than by whatever imports the judge (every test process, through the judge's tests).
    # scipy ships no type information (scipy-stubs is a separate package).
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

    by_sizes: dict[tuple[int, int], list[int]] = {}
    for index, (canary, baseline) in enumerate(sides):
        by_sizes.setdefault((canary.size, baseline.size), []).append(index)
    p_values = [1.0] * len(sides)
    for indexes in by_sizes.values():
        result = mannwhitneyu(
            np.stack([sides[index][0] for index in indexes]),
            np.stack([sides[index][1] for index in indexes]),
            alternative="two-sided",
            axis=1,
        )
        for index, p_value in zip(indexes, np.atleast_1d(result.pvalue), strict=True):
            # NaN is scipy's answer when it cannot rank (not for finite values): no evidence.
            p_values[index] = 1.0 if np.isnan(p_value) else float(p_value)
    return p_values


def _classify(
    metric: AnalysisMetric,
    canary: np.ndarray,
    baseline: np.ndarray,
    p_value: float | None,
    settings: AnalysisSettings,
) -> MetricJudgement:
    """One metric's judgement from its test's p-value (None: too few data points)."""
    if p_value is None:
        return _judgement(metric, canary, baseline, None, None, "nodata")
    shift = relative_shift(canary, baseline)
    classification: Classification = "pass"
    if p_value < 1 - settings.confidence and abs(shift) > metric.tolerance:
        classification = "high" if shift > 0 else "low"
    return _judgement(metric, canary, baseline, shift, p_value, classification)


def relative_shift(canary: np.ndarray, baseline: np.ndarray) -> float:
    """How far the canary sits from the baseline, as a fraction of the baseline's size.

    Normally the Hodges-Lehmann shift (the median of all pairwise differences canary -
    baseline, the effect estimate that belongs to the Mann-Whitney test) divided by the
    magnitude of the baseline's median.

    When the baseline's median is 0 the median is no yardstick. That is the usual case of a
    rare event such as a 5XX rate: at 0.1 % of 100 requests, nine periods in ten count no
    error. The median-based shift then stays 0 even when errors rise tenfold (at 1 %, a third
    of the canary's periods still count none, and the pairwise-difference median is 0 in about
    one interval in twenty), so for such a metric the size that matters is the mean: the shift
    is the difference of the means divided by the magnitude of the baseline's mean. A baseline
    that is 0 in every period has no size of its own; the shift is then measured against the
    mean magnitude of both sides pooled (so a canary that errs where the baseline never does is
    about +200 %), and it is 0 when both sides are all zeros.
    """
    baseline_median = float(np.median(baseline))
    if baseline_median != 0:
        return _hodges_lehmann(canary, baseline) / abs(baseline_median)
    scale = float(np.mean(np.abs(baseline)))
    if scale == 0:
        scale = float(np.mean(np.abs(np.concatenate([canary, baseline]))))
    if scale == 0:
        return 0.0
    return (float(np.mean(canary)) - float(np.mean(baseline))) / scale


def is_bad(classification: Classification, metric: AnalysisMetric) -> bool:
    """Whether the metric moved in the direction its `direction` calls harmful."""
    return classification in _BAD[metric.direction]


def interval_score(metrics: Sequence[MetricJudgement], settings: AnalysisSettings) -> float:
    """Σ over groups of weight x (passing metrics / metrics in the group), from 0 to 100; 0
    when a critical metric is bad. Divided by the weights' own sum, so that all passing is
    exactly 100 whatever the rounding of the weights."""
    if any(metric.critical and _is_harmful(metric) for metric in metrics):
        return 0.0
    weights = settings.weights()
    earned = 0.0
    for group, weight in weights.items():
        members = [metric for metric in metrics if metric.group == group]
        earned += weight * sum(metric.passed for metric in members) / len(members)
    return 100 * earned / sum(weights.values())


def verdict(score: float, settings: AnalysisSettings) -> Verdict:
    if score >= settings.pass_score:
        return "pass"
    if score >= settings.marginal_score:
        return "marginal"
    return "fail"


def _is_harmful(metric: MetricJudgement) -> bool:
    """A high or low classification that did not pass: a shift in the harmful direction."""
    return metric.classification in ("high", "low") and not metric.passed


def _hodges_lehmann(canary: np.ndarray, baseline: np.ndarray) -> float:
    return float(np.median(np.subtract.outer(canary, baseline)))


def _finite(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def _median(values: np.ndarray) -> float | None:
    return float(np.median(values)) if values.size else None


def _judgement(
    metric: AnalysisMetric,
    canary: np.ndarray,
    baseline: np.ndarray,
    shift: float | None,
    p_value: float | None,
    classification: Classification,
) -> MetricJudgement:
    return MetricJudgement(
        name=metric.name,
        group=metric.group,
        canary=_median(canary),
        baseline=_median(baseline),
        shift_percent=None if shift is None else shift * 100,
        p_value=p_value,
        classification=classification,
        passed=classification == "pass"
        or (classification != "nodata" and not is_bad(classification, metric)),
        critical=metric.critical,
        data_points=min(canary.size, baseline.size),
        canary_values=canary.tolist(),
        baseline_values=baseline.tolist(),
    )


def _check_covers(samples: Sequence[MetricSamples], settings: AnalysisSettings) -> None:
    """Samples must hold each metric of the settings exactly once, as the settings define it: a
    missing metric would leave its group out of the score, a duplicate would count twice."""
    given = {sample.metric.name: sample.metric for sample in samples}
    if (
        len(given) != len(samples)
        or len(samples) != len(settings.metrics)
        or any(given.get(metric.name) != metric for metric in settings.metrics)
    ):
        wanted = [metric.name for metric in settings.metrics]
        names = [sample.metric.name for sample in samples]
        raise ValueError(
            f"samples must hold each analysis metric once, as configured: {wanted}, got {names}"
        )
