"""`starter.py analysis` as people get it: the HTML report opened from disk in a real browser
(headless chromium, as tests/e2e/test_web_ui.py drives it), and the command against a run.

The report must draw every metric's chart with no console error and without touching the
network: every request other than the file itself is refused and recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("playwright", reason="browser tests need playwright, in the dev extra")

from playwright.async_api import ConsoleMessage, Error, Route  # noqa: E402

from cli.analysis_report import write_html  # noqa: E402
from ecs_canary.names import workflow_id_for  # noqa: E402
from scripts import browser  # noqa: E402
from tests.helpers import CLUSTER, is_running, sample_analysis, wait_until  # noqa: E402
from tests.helpers.analysis_report import WORKFLOW_ID  # noqa: E402


@pytest.mark.skipif(
    not browser.CHROMIUM.is_file(),
    reason=f"needs chromium ({browser.CHROMIUM}): apt-get install chromium (CI installs it)",
)
async def test_the_html_report_draws_every_metric_in_a_browser_offline(tmp_path: Path):
    analysis = sample_analysis()
    path = tmp_path / "report.html"
    write_html(WORKFLOW_ID, analysis, path)
    errors: list[str] = []
    refused: list[str] = []

    async def only_the_file(route: Route) -> None:
        if route.request.url == path.as_uri():
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            errors.append(f"{message.type}: {message.text}")

    def page_error(error: Error) -> None:
        errors.append(f"page error: {error}")

    async with browser.chromium_page() as page:
        await page.route("**/*", only_the_file)
        page.on("console", console)
        page.on("pageerror", page_error)
        await page.goto(path.as_uri())
        await page.wait_for_selector("#vis svg g.role-title")
        drawn = await page.evaluate(
            """count => [...Array(count).keys()].map(k => ({
                points: document.querySelectorAll(
                    `g.concat_${k}_group .mark-symbol.role-mark path`).length,
                lines: [...document.querySelectorAll(`g.concat_${k}_group .mark-line path`)]
                    .filter(line => (line.getAttribute("d") || "").length > 0).length,
            }))""",
            len(analysis.intervals[0].metrics),
        )
        titles = await page.locator("#vis svg g.role-title text").all_text_contents()

    names = [metric.name for metric in analysis.intervals[0].metrics]
    expected = [
        {
            "points": sum(
                len(m.canary_values) + len(m.baseline_values)
                for interval in analysis.intervals
                for m in interval.metrics
                if m.name == name
            ),
            # A line per side and interval with data: the CPU's canary has none in interval 2.
            "lines": sum(
                bool(m.canary_values) + bool(m.baseline_values)
                for interval in analysis.intervals
                for m in interval.metrics
                if m.name == name
            ),
        }
        for name in names
    ]
    assert drawn == expected
    assert titles[:3] == ["5xx-rate (errors, critical)", "p99-latency (latency)", "cpu (cpu)"]
    assert f"Canary analysis of {WORKFLOW_ID}" in titles
    assert errors == []
    assert refused == []


async def test_the_command_names_a_run_without_analysis_and_an_unknown_id(
    starter, worker, client, requests, runs, tmp_path
):
    wid = workflow_id_for(CLUSTER, "myapp")
    assert (await starter.run("deploy", starter.request_file(requests.raw()))).code == 0
    await wait_until(lambda: is_running(client.get_workflow_handle(wid)), timeout=20)
    await runs.track(wid)
    plain = await starter.run("analysis", wid)
    assert (plain.code, plain.err.strip()) == (
        1,
        f"{wid} runs no canary analysis (verification.analysis)",
    )
    report = tmp_path / "report.html"
    unknown = await starter.run("analysis", "ecs-canary/nowhere/nothing", "--html", str(report))
    assert (unknown.code, unknown.err.strip()) == (
        1,
        "no deployment with workflow id ecs-canary/nowhere/nothing",
    )
    assert not report.exists()
