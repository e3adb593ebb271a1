"""The canary analysis in words: the one-line summary, why a verdict went against the canary,
and an interval's metrics as a Markdown table.

Shared by the workflow (the reason a judge's rejection carries), the Web UI details, the
`gate_open` notification and `starter.py status`, so that they all say it the same way.
"""

from __future__ import annotations

from ecs_canary.analysis import AnalysisInterval, AnalysisStatus, MetricJudgement


def number(value: float | None) -> str:
    """`0.0123`, `97`, `1.2e+03`; `-` for no value."""
    return "-" if value is None else f"{value:.3g}"


def shift_text(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:+.1f} %"


def metric_problem(metric: MetricJudgement) -> str:
    """`p99-latency high (+48.0 %, p=0.0001, critical)`, `cpu nodata (12 data points)`."""
    if metric.classification == "nodata":
        return f"{metric.name} nodata ({metric.data_points} data points)"
    details = [shift_text(metric.shift_percent)]
    if metric.p_value is not None:
        details.append(f"p={metric.p_value:.2g}")
    if metric.critical:
        details.append("critical")
    return f"{metric.name} {metric.classification} ({', '.join(details)})"


def failing_metrics(interval: AnalysisInterval) -> str:
    """The metrics that did not pass, or `none` (a low score from weights alone cannot
    happen: every point lost is a metric that did not pass)."""
    problems = [metric_problem(metric) for metric in interval.metrics if not metric.passed]
    return ", ".join(problems) or "none"


def interval_verdict_text(interval: AnalysisInterval, planned: int) -> str:
    """`interval 2 of 3: score 33, fail`."""
    return f"interval {interval.index} of {planned}: score {interval.score:.0f}, {interval.verdict}"


def analysis_summary(analysis: AnalysisStatus) -> str:
    """One line: `passed: score 100, pass (3 of 3 intervals judged; baseline myappBaseline)`;
    the score and verdict are the latest interval's."""
    judged = f"{len(analysis.intervals)} of {analysis.intervals_planned} intervals judged"
    where = f"({judged}; baseline {analysis.baseline_service})"
    if analysis.score is None:
        return f"{analysis.state} {where}"
    return f"{analysis.state}: score {analysis.score:.0f}, {analysis.verdict} {where}"


def _cell(text: str) -> str:
    """A table cell: a `|` in a metric's name must not end the cell."""
    return text.replace("|", "\\|")


def interval_table(interval: AnalysisInterval) -> str:
    """The interval's metrics as a Markdown table: medians per side, the shift, the test's
    p-value, the classification and the fewer side's data points."""
    rows = [
        "| metric | group | canary | baseline | shift | p | result | points |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for metric in interval.metrics:
        result = metric.classification + ("" if metric.passed else " ✗")
        p_value = "-" if metric.p_value is None else f"{metric.p_value:.2g}"
        rows.append(
            f"| {_cell(metric.name)} | {_cell(metric.group)} | {number(metric.canary)} | "
            f"{number(metric.baseline)} | {shift_text(metric.shift_percent)} | {p_value} | "
            f"{result} | {metric.data_points} |"
        )
    return "\n".join(rows)
