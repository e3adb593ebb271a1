"""The canary analysis in words: the one-line summary, a metric's cells, why a verdict went
against the canary, and an interval's metrics as a Markdown table.

Shared by the workflow (the reason a judge's rejection carries), the Web UI details, the
`gate_open` notification and the starter (`status`, and `analysis` with its report), so that
they all say it the same way.
"""

from __future__ import annotations

from ecs_canary.analysis import AnalysisInterval, AnalysisStatus, MetricJudgement

# A metric's cells, by column, in a table of an interval (`metric_cells`).
METRIC_COLUMNS = ["metric", "group", "canary", "baseline", "shift", "p_value", "result", "points"]


def number_text(value: float | None) -> str:
    """`0.0502`, `97`, `1.234e+04`; `-` for no value."""
    return "-" if value is None else f"{value:.4g}"


def shift_text(percent: float | None) -> str:
    """`+48.0%`; `-` for no value."""
    return "-" if percent is None else f"{percent:+.1f}%"


def result_text(metric: MetricJudgement) -> str:
    """`pass`, `nodata`, `high (harmless)`, `high (bad)` or `high (bad, critical)`."""
    text: str = metric.classification
    if metric.classification in ("high", "low"):
        text += (
            " (harmless)" if metric.passed else " (bad, critical)" if metric.critical else " (bad)"
        )
    return text


def metric_cells(metric: MetricJudgement) -> dict[str, str]:
    """One metric's row: medians per side, the shift, the test's p-value, the classification
    and the fewer side's data points."""
    return {
        "metric": metric.name,
        "group": metric.group,
        "canary": number_text(metric.canary),
        "baseline": number_text(metric.baseline),
        "shift": shift_text(metric.shift_percent),
        "p_value": "-" if metric.p_value is None else f"{metric.p_value:.3g}",
        "result": result_text(metric),
        "points": str(metric.data_points),
    }


def summary_text(analysis: AnalysisStatus) -> str:
    """`failed, score 0, verdict fail; 1 of 3 intervals judged; baseline myappBaseline, 60 s
    periods`: the score and verdict are the latest interval's."""
    outcome: str = analysis.state
    if analysis.score is not None:
        outcome += f", score {number_text(analysis.score)}"
    if analysis.verdict is not None:
        outcome += f", verdict {analysis.verdict}"
    planned = analysis.intervals_planned
    judged = f"{len(analysis.intervals)} of {planned} interval{'' if planned == 1 else 's'}"
    return (
        f"{outcome}; {judged} judged; baseline {analysis.baseline_service}, "
        f"{analysis.period_seconds} s periods"
    )


def metric_problem(metric: MetricJudgement) -> str:
    """`p99-latency high (+48.0%, p=0.0001, critical)`, `cpu nodata (12 data points)`."""
    if metric.classification == "nodata":
        return f"{metric.name} nodata ({metric.data_points} data points)"
    details = [shift_text(metric.shift_percent)]
    if metric.p_value is not None:
        details.append(f"p={metric.p_value:.2g}")
    if metric.critical:
        details.append("critical")
    return f"{metric.name} {metric.classification} ({', '.join(details)})"


def failing_metrics(interval: AnalysisInterval) -> str:
    """The metrics that did not pass, or `none`."""
    problems = [metric_problem(metric) for metric in interval.metrics if not metric.passed]
    return ", ".join(problems) or "none"


def interval_verdict_text(interval: AnalysisInterval, planned: int) -> str:
    """`interval 2 of 3: score 33, fail`."""
    score = number_text(interval.score)
    return f"interval {interval.index} of {planned}: score {score}, {interval.verdict}"


def _cell(text: str) -> str:
    """A Markdown table cell: a `|` in a metric's name must not end the cell."""
    return text.replace("|", "\\|")


def interval_table(interval: AnalysisInterval) -> str:
    """The interval's metrics as a Markdown table, one row per metric."""
    rows = [
        "| " + " | ".join(METRIC_COLUMNS) + " |",
        "|" + " --- |" * len(METRIC_COLUMNS),
    ]
    for metric in interval.metrics:
        cells = metric_cells(metric)
        rows.append("| " + " | ".join(_cell(cells[column]) for column in METRIC_COLUMNS) + " |")
    return "\n".join(rows)
