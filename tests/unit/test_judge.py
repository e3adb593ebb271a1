"""The canary analysis judge on its own: the test, the effect, the direction, the score.

The property tests run derandomized without hypothesis's example database, as the other
property tests of the project do, so that a run is the same on every machine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecs_canary.analysis import (
    AnalysisMetric,
    AnalysisSettings,
    IntervalJudgement,
    MetricJudgement,
    MetricSamples,
)
from ecs_canary.judge import judge_interval, relative_shift
from tests.helpers.fuzzing import examples

PROPERTIES = settings(
    max_examples=examples(100),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PERIODS = 60


def _metric(name: str, stat: str = "Average", **fields: Any) -> AnalysisMetric:
    return AnalysisMetric(
        name=name, namespace="ECS/Emulator", metric_name=name, stat=stat, **fields
    )


ERRORS = _metric("errors", critical=True, group="errors")
LATENCY = _metric("latency", stat="p99", group="latency")
CPU = _metric("cpu", group="cpu")


def _settings(*metrics: AnalysisMetric, **fields: Any) -> AnalysisSettings:
    return AnalysisSettings(metrics=list(metrics), **fields)


def _samples(metric: AnalysisMetric, canary: Any, baseline: Any) -> MetricSamples:
    return MetricSamples(metric=metric, canary=list(canary), baseline=list(baseline))


def judge_metric(sample: MetricSamples, analysis: AnalysisSettings) -> MetricJudgement:
    """The judgement of an interval with this one metric."""
    (judgement,) = judge_interval([sample], analysis).metrics
    return judgement


def _latencies(seed: int, added: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.lognormal(math.log(100), 0.1, PERIODS) + added


def _error_rates(seed: int, rate: float) -> np.ndarray:
    return np.random.default_rng(seed).binomial(100, rate, PERIODS) / 100


def _cpu(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(20, 2, PERIODS)


def _three(errors: tuple[Any, Any], latency: tuple[Any, Any], **fields: Any) -> IntervalJudgement:
    """An interval of the three-group analysis: errors (critical), latency and CPU."""
    return judge_interval(
        [
            _samples(ERRORS, *errors),
            _samples(LATENCY, *latency),
            _samples(CPU, _cpu(1), _cpu(2)),
        ],
        _settings(ERRORS, LATENCY, CPU, **fields),
    )


# --- Exact cases ------------------------------------------------------------------------------


def test_a_canary_identical_to_its_baseline_passes_with_the_full_score():
    values = _latencies(1)
    judgement = judge_interval([_samples(LATENCY, values, values)], _settings(LATENCY))
    (metric,) = judgement.metrics
    assert (judgement.score, judgement.verdict) == (100.0, "pass")
    assert (metric.classification, metric.passed, metric.shift_percent) == ("pass", True, 0.0)
    assert metric.p_value == 1.0
    assert metric.canary == metric.baseline == float(np.median(values))
    assert metric.data_points == PERIODS
    assert metric.canary_values == metric.baseline_values == values.tolist()


def test_the_shift_is_the_hodges_lehmann_shift_relative_to_the_baseline_median():
    baseline = _latencies(1)
    judgement = judge_metric(_samples(LATENCY, baseline + 30, baseline), _settings(LATENCY))
    # Every pairwise difference of a pure shift is centred on it: the estimate is exact.
    assert judgement.shift_percent == pytest.approx(30 / np.median(baseline) * 100)
    assert judgement.classification == "high" and not judgement.passed
    assert judgement.p_value is not None and judgement.p_value < 1e-6


def test_a_significant_shift_within_the_tolerance_passes():
    baseline = _latencies(1)
    # +10 % on every period: the test rejects, but the shift is within the default 25 %.
    judgement = judge_metric(_samples(LATENCY, baseline * 1.1, baseline), _settings(LATENCY))
    assert judgement.p_value is not None and judgement.p_value < 0.02
    assert judgement.shift_percent == pytest.approx(10, abs=1)
    assert (judgement.classification, judgement.passed) == ("pass", True)


def test_a_large_shift_the_test_cannot_confirm_passes():
    # Two noisy samples whose medians differ by 30 %, too few and too scattered to reject.
    rng = np.random.default_rng(3)
    baseline = rng.lognormal(math.log(100), 1.5, 30)
    canary = rng.lognormal(math.log(130), 1.5, 30)
    judgement = judge_metric(_samples(LATENCY, canary, baseline), _settings(LATENCY))
    assert judgement.p_value is not None and judgement.p_value >= 0.02
    assert (judgement.classification, judgement.passed) == ("pass", True)


@pytest.mark.parametrize(
    ("direction", "added", "classification", "passed"),
    [
        ("increase", 60, "high", False),
        ("increase", -60, "low", True),
        ("decrease", 60, "high", True),
        ("decrease", -60, "low", False),
        ("either", 60, "high", False),
        ("either", -60, "low", False),
    ],
)
def test_the_direction_decides_whether_a_shift_is_bad(direction, added, classification, passed):
    metric = _metric("latency", direction=direction)
    baseline = _latencies(1)
    judgement = judge_interval([_samples(metric, baseline + added, baseline)], _settings(metric))
    assert (judgement.metrics[0].classification, judgement.metrics[0].passed) == (
        classification,
        passed,
    )
    assert judgement.score == (100.0 if passed else 0.0)


def test_a_critical_bad_metric_makes_the_score_zero():
    # errors-1 against the 0.1 % base: the critical error rate is high, everything else passes.
    judgement = _three(
        (_error_rates(1, 0.01), _error_rates(2, 0.001)), (_latencies(3), _latencies(4))
    )
    errors, latency, cpu = judgement.metrics
    assert errors.classification == "high" and not errors.passed and errors.critical
    assert latency.passed and cpu.passed
    assert (judgement.score, judgement.verdict) == (0.0, "fail")


def test_a_non_critical_bad_metric_costs_its_group_weight():
    good_errors = (_error_rates(1, 0.001), _error_rates(2, 0.001))
    slow = (_latencies(3, added=50), _latencies(4))
    weighted = _three(good_errors, slow, group_weights={"errors": 50, "latency": 30, "cpu": 20})
    assert [metric.passed for metric in weighted.metrics] == [True, False, True]
    assert (weighted.score, weighted.verdict) == (pytest.approx(70), "fail")
    lenient = _three(
        good_errors,
        slow,
        group_weights={"errors": 50, "latency": 30, "cpu": 20},
        marginal_score=60,
    )
    assert lenient.verdict == "marginal"
    equal = _three(good_errors, slow)
    assert equal.score == pytest.approx(200 / 3)


def test_a_group_scores_the_share_of_its_metrics_that_pass():
    fast = _metric("p50", group="latency")
    slow = _metric("p99", group="latency")
    baseline = _latencies(1)
    judgement = judge_interval(
        [_samples(fast, baseline, baseline), _samples(slow, baseline + 60, baseline)],
        _settings(fast, slow, pass_score=50, marginal_score=10),
    )
    assert (judgement.score, judgement.verdict) == (50.0, "pass")


def test_too_few_data_points_on_either_side_is_nodata_which_does_not_pass():
    values = _latencies(1)
    short = [*values[:29], math.nan, math.nan]
    for canary, baseline in ((short, values), (values, short)):
        judgement = judge_interval([_samples(LATENCY, canary, baseline)], _settings(LATENCY))
        (metric,) = judgement.metrics
        assert (metric.classification, metric.passed, metric.data_points) == ("nodata", False, 29)
        assert (metric.p_value, metric.shift_percent) == (None, None)
        assert (judgement.score, judgement.verdict) == (0.0, "fail")
    empty = judge_metric(_samples(LATENCY, [], values), _settings(LATENCY))
    assert (empty.classification, empty.canary, empty.baseline) == (
        "nodata",
        None,
        float(np.median(values)),
    )


def test_nan_values_are_ignored_and_min_data_points_is_the_request_s():
    values = _latencies(1)
    with_gaps = [*values[:10], math.nan, *values[10:]]
    judgement = judge_metric(
        _samples(LATENCY, with_gaps, values[:10]), _settings(LATENCY, min_data_points=10)
    )
    assert (judgement.classification, judgement.data_points) == ("pass", 10)
    assert judgement.canary_values == values.tolist()


def test_a_critical_metric_without_data_does_not_zero_the_score():
    judgement = _three(([], []), (_latencies(3), _latencies(4)))
    assert judgement.metrics[0].classification == "nodata"
    assert judgement.score == pytest.approx(200 / 3)


# --- The relative shift where the baseline's median is 0 ---------------------------------------


def test_at_a_zero_baseline_median_the_shift_is_the_means_relative_to_the_baseline_mean():
    baseline = np.array([0.0] * 50 + [0.01] * 10)
    canary = np.array([0.0] * 20 + [0.01] * 40)
    # The pairwise-difference median would be 0 here, and the median no yardstick.
    assert relative_shift(canary, baseline) == pytest.approx((0.04 / 6 - 0.01 / 6) / (0.01 / 6))


def test_at_an_all_zero_baseline_the_shift_is_relative_to_both_sides_pooled():
    baseline = np.zeros(60)
    canary = np.array([0.0] * 30 + [0.02] * 30)
    assert relative_shift(canary, baseline) == pytest.approx(2.0)
    assert relative_shift(np.zeros(60), baseline) == 0.0


def test_a_rare_error_rate_that_did_not_change_passes():
    rates = _error_rates(5, 0.001)
    judgement = judge_metric(_samples(ERRORS, rates, rates), _settings(ERRORS))
    assert (judgement.classification, judgement.passed, judgement.shift_percent) == (
        "pass",
        True,
        0.0,
    )
    zeros = judge_metric(_samples(ERRORS, np.zeros(60), np.zeros(60)), _settings(ERRORS))
    assert (zeros.classification, zeros.p_value, zeros.shift_percent) == ("pass", 1.0, 0.0)


def test_the_judgement_is_deterministic_and_survives_json():
    judgement = _three(
        (_error_rates(1, 0.01), _error_rates(2, 0.001)), (_latencies(3, 20), _latencies(4))
    )
    again = _three(
        (_error_rates(1, 0.01), _error_rates(2, 0.001)), (_latencies(3, 20), _latencies(4))
    )
    assert judgement == again
    assert IntervalJudgement.model_validate_json(judgement.model_dump_json()) == judgement


def test_samples_must_hold_each_configured_metric_once():
    values = _latencies(1).tolist()
    analysis = _settings(ERRORS, LATENCY)
    refused = [
        [_samples(LATENCY, values, values)],
        [_samples(LATENCY, values, values), _samples(LATENCY, values, values)],
        [_samples(LATENCY, values, values), _samples(_metric("errors"), values, values)],
    ]
    for samples in refused:
        with pytest.raises(ValueError, match="each analysis metric once"):
            judge_interval(samples, analysis)


# --- Properties -------------------------------------------------------------------------------

# Metric values as CloudWatch reports them: within a millionth of a unit, up to a million.
VALUE = st.integers(-(10**12), 10**12).map(lambda micros: micros / 10**6)
VALUES = st.lists(VALUE, min_size=30, max_size=80)
MAYBE_MISSING = st.lists(st.one_of(VALUE, st.just(math.nan)), max_size=80)
METRICS = st.builds(
    _metric,
    name=st.sampled_from(["a", "b", "c", "d"]),
    direction=st.sampled_from(["increase", "decrease", "either"]),
    tolerance=st.floats(min_value=0, max_value=2),
    critical=st.booleans(),
    group=st.sampled_from(["g1", "g2"]),
)


@st.composite
def _intervals(draw: st.DrawFn) -> tuple[list[MetricSamples], AnalysisSettings]:
    metrics = draw(st.lists(METRICS, min_size=1, max_size=4, unique_by=lambda m: m.name))
    analysis = _settings(*metrics, min_data_points=draw(st.integers(1, 40)))
    samples = [_samples(metric, draw(MAYBE_MISSING), draw(MAYBE_MISSING)) for metric in metrics]
    return samples, analysis


@PROPERTIES
@given(st.lists(METRICS, min_size=1, max_size=4, unique_by=lambda m: m.name), VALUES)
def test_identical_samples_always_pass(metrics, values):
    judgement = judge_interval(
        [_samples(metric, values, values) for metric in metrics], _settings(*metrics)
    )
    assert all(metric.classification == "pass" for metric in judgement.metrics)
    assert (judgement.score, judgement.verdict) == (100.0, "pass")


@PROPERTIES
@given(_intervals())
def test_scores_stay_within_0_and_100_and_match_the_verdict(interval):
    samples, analysis = interval
    judgement = judge_interval(samples, analysis)
    assert 0 <= judgement.score <= 100
    expected = (
        "pass"
        if judgement.score >= analysis.pass_score
        else "marginal"
        if judgement.score >= analysis.marginal_score
        else "fail"
    )
    assert judgement.verdict == expected
    harmful = {"increase": {"high"}, "decrease": {"low"}, "either": {"high", "low"}}
    for sample, metric in zip(samples, judgement.metrics, strict=True):
        assert metric.passed == (
            metric.classification == "pass"
            or metric.classification in {"high", "low"} - harmful[sample.metric.direction]
        )
        if metric.classification == "nodata":
            assert metric.data_points < analysis.min_data_points


@PROPERTIES
@given(
    VALUES,
    st.sampled_from(["increase", "either"]),
    st.lists(METRICS, max_size=3, unique_by=lambda m: m.name),
)
def test_a_critical_metric_that_is_bad_makes_the_score_zero(values, direction, others):
    critical = _metric("critical", direction=direction, critical=True)
    baseline = np.asarray(values)
    # Every canary value above every baseline value, by more than the baseline's size.
    spread = float(np.max(np.abs(baseline))) + 1
    canary = baseline + 4 * spread
    judgement = judge_interval(
        [
            _samples(critical, canary, baseline),
            *(_samples(metric, values, values) for metric in others),
        ],
        _settings(critical, *others),
    )
    assert judgement.metrics[0].classification == "high"
    assert (judgement.score, judgement.verdict) == (0.0, "fail")


@PROPERTIES
@given(VALUES, st.integers(0, 29), st.booleans())
def test_fewer_points_than_required_is_nodata(values, kept, canary_short):
    short = values[:kept] + [math.nan] * 3
    canary, baseline = (short, values) if canary_short else (values, short)
    judgement = judge_metric(_samples(LATENCY, canary, baseline), _settings(LATENCY))
    assert (judgement.classification, judgement.passed, judgement.data_points) == (
        "nodata",
        False,
        kept,
    )


def test_a_metric_s_judgement_does_not_depend_on_the_others_of_its_interval():
    # Metrics of the same sizes share one scipy call: the answers must be those of one each.
    together = _three(
        (_error_rates(1, 0.01), _error_rates(2, 0.001)), (_latencies(3, 20), _latencies(4))
    )
    alone = [
        judge_metric(
            _samples(ERRORS, _error_rates(1, 0.01), _error_rates(2, 0.001)), _settings(ERRORS)
        ),
        judge_metric(_samples(LATENCY, _latencies(3, 20), _latencies(4)), _settings(LATENCY)),
        judge_metric(_samples(CPU, _cpu(1), _cpu(2)), _settings(CPU)),
    ]
    assert together.metrics == alone
