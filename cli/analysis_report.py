"""`starter.py analysis`: the canary analysis of a run, from its `status` query's `analysis`.

Two renderings of one `AnalysisStatus`, both pure functions of it:
- `analysis_lines`: a table per judged interval, for the terminal;
- `write_html`: one self-contained HTML file with a chart per metric (canary and baseline per
  period, the interval boundaries, each interval's verdict), drawn by Vega-Lite through altair
  with the Vega scripts inlined, so that the report opens anywhere with no network.

A period's time is its interval's `started_at` plus its index times `period_seconds`: the
judgement keeps each side's finite per-period values in time order, not their timestamps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import altair as alt

from cli.format import clock, table_lines
from ecs_canary.analysis import AnalysisInterval, AnalysisStatus, MetricJudgement
from ecs_canary.analysis_text import (
    METRIC_COLUMNS,
    metric_cells,
    number_text,
    result_text,
    summary_text,
)

SIDES = ["canary", "baseline"]
# Purple and blue, apart from the verdicts' green, orange and red.
SIDE_COLOURS = ["#7b3294", "#1f77b4"]
VERDICTS = ["pass", "marginal", "fail"]
VERDICT_COLOURS = ["#2ca02c", "#ff7f0e", "#d62728"]
CHART_WIDTH = 760
CHART_HEIGHT = 170
TIME_AXIS = alt.Axis(format="%H:%M:%S", labelOverlap=True)


# --- The terminal's table ---------------------------------------------------------------------


def analysis_lines(workflow_id: str, analysis: AnalysisStatus) -> list[str]:
    """The analysis in a few lines, then a table of the metrics of each judged interval."""
    lines = [f"canary analysis of {workflow_id}: {summary_text(analysis)}"]
    if not analysis.intervals:
        lines.append("no interval judged yet")
    for interval in analysis.intervals:
        lines.append("")
        lines.append(interval_heading(interval))
        lines.extend(table_lines(METRIC_COLUMNS, [metric_cells(m) for m in interval.metrics]))
    return lines


def interval_heading(interval: AnalysisInterval) -> str:
    return (
        f"interval {interval.index}: {clock(interval.started_at)} to {clock(interval.ended_at)}, "
        f"score {number_text(interval.score)}, {interval.verdict}"
    )


# --- The HTML report --------------------------------------------------------------------------


def write_html(workflow_id: str, analysis: AnalysisStatus, path: Path) -> None:
    """The report as one HTML file with the Vega scripts inlined (no network to open it)."""
    report_chart(workflow_id, analysis).save(
        path, format="html", inline=True, embed_options={"renderer": "svg", "actions": False}
    )


def report_chart(workflow_id: str, analysis: AnalysisStatus) -> alt.VConcatChart:
    """A chart per metric, stacked, under a title that says how the analysis stands."""
    names = list(dict.fromkeys(m.name for i in analysis.intervals for m in i.metrics))
    charts: list[alt.LayerChart | alt.Chart] = [metric_chart(name, analysis) for name in names]
    title = alt.TitleParams(
        text=f"Canary analysis of {workflow_id}",
        subtitle=summary_text(analysis),
        anchor="start",
        fontSize=16,
    )
    return alt.vconcat(*(charts or [_empty_chart()]), title=title).resolve_scale(
        x="shared", y="independent"
    )


def metric_chart(name: str, analysis: AnalysisStatus) -> alt.LayerChart:
    """One metric: each interval as a band coloured by its verdict, with its boundaries, a label
    (index, verdict, score and this metric's classification), and the canary's and the
    baseline's per-period values."""
    judged = [
        (interval, metric)
        for interval in analysis.intervals
        for metric in interval.metrics
        if metric.name == name
    ]
    group = judged[0][1].group
    critical = ", critical" if judged[0][1].critical else ""
    bands = alt.Chart(alt.Data(values=[_band(interval, m) for interval, m in judged]))
    values = alt.Chart(alt.Data(values=_points(judged, analysis.period_seconds)))
    return alt.LayerChart(
        layer=[
            bands.mark_rect(opacity=0.12).encode(
                x=_time("start"),
                x2="end:T",
                fill=alt.Fill(
                    "verdict:N",
                    scale=alt.Scale(domain=VERDICTS, range=VERDICT_COLOURS),
                    title="interval verdict",
                ),
            ),
            bands.mark_rule(strokeDash=[4, 3], color="#555").encode(x="start:T"),
            bands.mark_rule(strokeDash=[4, 3], color="#555").encode(x="end:T"),
            bands.mark_text(align="left", dx=4, baseline="bottom", fontWeight="bold").encode(
                x="start:T",
                # Just above the plot, under the chart's title: clear of the values.
                y=alt.value(-3),
                text="label:N",
                color=alt.Color(
                    "verdict:N",
                    scale=alt.Scale(domain=VERDICTS, range=VERDICT_COLOURS),
                    legend=None,
                ),
            ),
            values.mark_line(point=alt.OverlayMarkDef(size=14), strokeWidth=1.5).encode(
                x=_time("time"),
                y=alt.Y("value:Q", title=name, scale=alt.Scale(zero=False)),
                stroke=alt.Stroke(
                    "side:N", scale=alt.Scale(domain=SIDES, range=SIDE_COLOURS), title="side"
                ),
                detail="interval:N",
                tooltip=[
                    alt.Tooltip("time:T", format="%H:%M:%S", formatType="utc", title="time (UTC)"),
                    "side:N",
                    "value:Q",
                    "interval:N",
                ],
            ),
        ],
        title=alt.TitleParams(f"{name} ({group}{critical})", anchor="start", offset=18),
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
    )


def _time(field: str) -> alt.X:
    """The time axis, in UTC like the rest of the starter's output."""
    return alt.X(f"{field}:T", title="time (UTC)", scale=alt.Scale(type="utc"), axis=TIME_AXIS)


def _band(interval: AnalysisInterval, metric: MetricJudgement) -> dict[str, Any]:
    return {
        "start": _iso(interval.started_at),
        "end": _iso(interval.ended_at),
        "verdict": interval.verdict,
        "label": (
            f"interval {interval.index}: {interval.verdict}, score "
            f"{number_text(interval.score)} | metric: {result_text(metric)}"
        ),
    }


def _points(
    judged: list[tuple[AnalysisInterval, MetricJudgement]], period_seconds: int
) -> list[dict[str, Any]]:
    """One row per side, interval and period, at the period's time."""
    period = timedelta(seconds=period_seconds)
    return [
        {
            "time": _iso(interval.started_at + index * period),
            "side": side,
            "value": value,
            "interval": interval.index,
        }
        for interval, metric in judged
        for side, series in (("canary", metric.canary_values), ("baseline", metric.baseline_values))
        for index, value in enumerate(series)
    ]


def _empty_chart() -> alt.Chart:
    """What the report shows before an interval has been judged."""
    return (
        alt.Chart(alt.Data(values=[{"text": "no interval judged yet"}]))
        .mark_text(size=14)
        .encode(text="text:N")
        .properties(width=CHART_WIDTH, height=60)
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat()
