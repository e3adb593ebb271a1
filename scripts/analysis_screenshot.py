"""`python scripts/analysis_screenshot.py`: docs/images/analysis-report.png, the HTML report of
`starter.py analysis --html` as chromium draws it, for the README and docs/starter.md.

Needs no stack: the analysis is simulated the way the benchmark simulates it (bench/analysis.py,
the emulator's own answer model) and judged by the real judge. The story: a canary whose first
two 5-minute intervals (10-second periods) are as good as the baseline, and whose 5XX rate then
rises to 5 % (what an `errors-5` image does), so that the third interval fails on its critical
5XX-rate metric and the analysis fails.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.analysis import OLD_IMAGE, SEED, SETTINGS, simulated_samples  # noqa: E402
from cli.analysis_report import write_html  # noqa: E402
from ecs_canary.analysis import AnalysisInterval, AnalysisStatus  # noqa: E402
from ecs_canary.judge import judge_interval  # noqa: E402
from ecs_emulator.answers import AnswerModel  # noqa: E402
from scripts.browser import CHROMIUM, VIEWPORT, chromium_page  # noqa: E402

IMAGE = ROOT / "docs" / "images" / "analysis-report.png"
WORKFLOW_ID = "ecs-canary/prod/myapp"
STARTED = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
PERIOD_SECONDS = 10
PERIODS = 30
CANARY_IMAGES = [OLD_IMAGE, OLD_IMAGE, "myapp:errors-5"]


def simulated_analysis() -> AnalysisStatus:
    rng = np.random.default_rng(SEED)
    baseline = AnswerModel.from_images([OLD_IMAGE])
    settings = SETTINGS.model_copy(update={"period_seconds": PERIOD_SECONDS})
    length = timedelta(seconds=PERIOD_SECONDS * PERIODS)
    intervals = []
    for index, image in enumerate(CANARY_IMAGES, start=1):
        canary = AnswerModel.from_images([image])
        samples = simulated_samples(canary, baseline, settings.metrics, rng, PERIODS)
        judgement = judge_interval(samples, settings)
        started = STARTED + (index - 1) * length
        intervals.append(
            AnalysisInterval(
                index=index, started_at=started, ended_at=started + length, **dict(judgement)
            )
        )
    last = intervals[-1]
    return AnalysisStatus(
        state="failed" if last.verdict == "fail" else "passed",
        score=last.score,
        verdict=last.verdict,
        period_seconds=PERIOD_SECONDS,
        intervals_planned=len(CANARY_IMAGES),
        baseline_service="myappBaseline",
        intervals=intervals,
    )


async def screenshot() -> None:
    if not CHROMIUM.is_file():
        raise SystemExit(f"no chromium at {CHROMIUM}: apt-get install chromium")
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.html"
        write_html(WORKFLOW_ID, simulated_analysis(), report)
        async with chromium_page() as page:
            await page.goto(report.as_uri())
            await page.wait_for_selector("#vis svg g.role-title")
            height = await page.evaluate("document.documentElement.scrollHeight")
            await page.set_viewport_size({**VIEWPORT, "height": height})
            await page.screenshot(path=IMAGE)
    print(f"wrote {IMAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    asyncio.run(screenshot())
