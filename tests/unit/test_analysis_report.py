"""`starter.py analysis`'s two renderings of a run's canary analysis, from a hand-made one: the
terminal's table per interval and the self-contained HTML report (its chart specification; the
browser test, tests/e2e/test_analysis_report.py, draws it)."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

from cli.analysis_report import analysis_lines, report_chart, write_html
from ecs_canary.analysis import AnalysisStatus
from tests.helpers import sample_analysis
from tests.helpers.analysis_report import PERIOD_SECONDS, PERIODS, STARTED, WORKFLOW_ID


def test_the_table_lists_each_interval_s_metrics():
    lines = analysis_lines(WORKFLOW_ID, sample_analysis())
    assert lines == [
        "canary analysis of ecs-canary/prod/myapp: failed, score 0, verdict fail; 2 of 3 "
        "intervals judged; baseline myappBaseline, 30 s periods",
        "",
        "interval 1: 2026-12-06 14:00:00 UTC to 2026-12-06 14:05:00 UTC, score 100, pass",
        "METRIC       GROUP    CANARY  BASELINE  SHIFT  P_VALUE  RESULT  POINTS",
        "5xx-rate     errors   0.001   0.001     +0.0%  0.5      pass    10",
        "p99-latency  latency  0.104   0.105     -1.0%  0.5      pass    10",
        "cpu          cpu      21      21.2      +0.0%  0.5      pass    10",
        "",
        "interval 2: 2026-12-06 14:05:00 UTC to 2026-12-06 14:10:00 UTC, score 0, fail",
        "METRIC       GROUP    CANARY  BASELINE  SHIFT     P_VALUE  RESULT                POINTS",
        "5xx-rate     errors   0.06    0.001     +4900.0%  0.0001   high (bad, critical)  10",
        "p99-latency  latency  0.104   0.105     +0.0%     0.5      pass                  10",
        "cpu          cpu      -       21        -         -        nodata                0",
    ]


def test_a_harmless_shift_is_told_apart_from_a_bad_one():
    analysis = sample_analysis()
    cpu = analysis.intervals[0].metrics[2]
    cpu.classification, cpu.shift_percent = "low", -30.0
    assert analysis_lines(WORKFLOW_ID, analysis)[6].split()[-2:] == ["(harmless)", "10"]


def test_an_analysis_without_intervals_says_so():
    waiting = AnalysisStatus(period_seconds=60, intervals_planned=3, baseline_service="myappB")
    assert analysis_lines(WORKFLOW_ID, waiting) == [
        "canary analysis of ecs-canary/prod/myapp: waiting; 0 of 3 intervals judged; baseline "
        "myappB, 60 s periods",
        "no interval judged yet",
    ]


def test_the_report_has_a_chart_per_metric_with_each_period_at_its_time():
    spec = report_chart(WORKFLOW_ID, sample_analysis()).to_dict()
    charts = spec["vconcat"]
    assert [chart["title"]["text"] for chart in charts] == [
        "5xx-rate (errors, critical)",
        "p99-latency (latency)",
        "cpu (cpu)",
    ]
    bands, *_, values = charts[2]["layer"]
    assert [(band["verdict"], band["label"]) for band in bands["data"]["values"]] == [
        ("pass", "interval 1: pass, score 100 | metric: pass"),
        ("fail", "interval 2: fail, score 0 | metric: nodata"),
    ]
    points = values["data"]["values"]
    # The CPU has no canary data in interval 2: 10 periods on each side, then the baseline's.
    assert [(p["side"], p["interval"]) for p in points].count(("canary", 2)) == 0
    assert len(points) == 3 * PERIODS
    second_baseline = [p for p in points if (p["side"], p["interval"]) == ("baseline", 2)]
    interval_start = STARTED + timedelta(seconds=PERIODS * PERIOD_SECONDS)
    assert [p["time"] for p in second_baseline] == [
        (interval_start + timedelta(seconds=i * PERIOD_SECONDS)).isoformat() for i in range(10)
    ]
    assert spec["title"]["text"] == "Canary analysis of ecs-canary/prod/myapp"


LOADS = ("src", "href", "data")


class _Loads(HTMLParser):
    """The addresses a page's own tags load (scripts' contents are not parsed as tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(f"{tag} {name}={value}" for name, value in attrs if name in LOADS)


def _loads(html: str) -> list[str]:
    parser = _Loads()
    parser.feed(html)
    return parser.found


def test_the_html_report_is_one_file_that_needs_no_network(tmp_path):
    path = tmp_path / "report.html"
    write_html(WORKFLOW_ID, sample_analysis(), path)
    html = path.read_text()
    assert html.count("<script") == 2  # the inlined Vega bundle, then the chart
    assert _loads(html) == []
    assert "window.vegaEmbed=" in html and '"renderer": "svg"' in html
    assert "5xx-rate (errors, critical)" in html
