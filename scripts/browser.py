"""The Temporal Web UI (2.54) as a person at the gate uses it, driven by Playwright in Debian's
chromium: the browser test (tests/e2e/test_web_ui.py) and the screenshots for docs/web-ui.md
(scripts/screenshots.py) open and fill the Send-an-Update dialog the same way, here.

Playwright comes from PyPI (the dev extra) and drives /usr/bin/chromium through
`executable_path`: there is no browser download (`playwright install` is never run).

What the UI's markup needs (learned in a headless browser, see docs/web-ui.md):
- the page holds the dialog's form twice, so ids such as `update-id` are not unique and the
  labels do not name their fields: the Name select and the Update ID field are found by their
  test ids, everything else by role and text;
- the Data editor hands its text to the form when it loses focus: a Submit clicked while the
  editor still has focus may send nothing, so the Update ID (Random UUID) is filled after it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from playwright.async_api import Locator, Page, ViewportSize, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a closed network: without the background-networking flags chromium keeps trying
# to reach Google's services and floods the log with refused connections.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where chromium's sandbox will not start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Small enough for the docs' screenshots, wide enough for the run page's three columns.
VIEWPORT = ViewportSize(width=1280, height=800)
# Clicks on Random UUID before giving up (each waits up to 2 s for the id to appear).
_FILL_ATTEMPTS = 5
# The UI answers in well under a second; a loaded CI machine (tests beside it) may take longer.
TIMEOUT_MS = 30_000
# The run list's filter for deployments waiting for a decision (docs/web-ui.md).
WAITING = "DeploymentStage='verification' AND ExecutionStatus='Running'"
# A completed run's status as its page shows it (the badge's capitals are CSS's).
COMPLETED = re.compile("completed", re.IGNORECASE)


@asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A fresh page in headless chromium, closed (browser and driver) on the way out."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            context = await browser.new_context(viewport=VIEWPORT)
            page = await context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            await browser.close()


def run_status(page: Page) -> Locator:
    """The run page's status badge (Running, Completed, ...)."""
    return page.get_by_role("status").first


async def open_update_dialog(page: Page) -> Locator:
    """More Actions -> Send an Update on a run's page; returns the dialog."""
    await page.get_by_role("button", name="More Actions").click()
    await page.get_by_role("menuitem", name="Send an Update").click()
    dialog = page.get_by_role("dialog", name="Send an Update")
    await expect(dialog).to_be_visible(timeout=TIMEOUT_MS)
    return dialog


async def fill_update(
    dialog: Locator,
    name: str,
    payload: dict[str, Any],
    while_listed: Callable[[], Awaitable[None]] | None = None,
) -> str:
    """Choose the Update, type its input and give it a fresh Update ID; Submit is left to the
    caller (a screenshot of the filled dialog comes first). `while_listed` runs while the list
    of Updates is open. Returns the Update's entry as the list showed it: its name and the
    handler's description (`@workflow.update(description=...)`)."""
    await dialog.get_by_test_id("update-select-button").click()
    option = dialog.get_by_role("option", name=re.compile(rf"^{re.escape(name)}\b"))
    listed = await option.inner_text()
    if while_listed is not None:
        await while_listed()
    await option.click()
    await expect(dialog.get_by_test_id("update-select-button")).to_have_accessible_name(name)
    await dialog.get_by_role("textbox", name="Data").fill(json.dumps(payload))
    # After the Data editor: the click takes the focus from it, so the form has the new input.
    # The dialog may still be redrawing after a refusal (which clears the Update ID): click
    # until the field holds an id.
    update_id = dialog.get_by_test_id("update-id")
    for _ in range(_FILL_ATTEMPTS):
        await dialog.get_by_role("button", name="Random UUID").click()
        try:
            await expect(update_id).not_to_have_value("", timeout=2_000)
            break
        except AssertionError:
            continue
    await expect(update_id).not_to_have_value("")
    return listed


async def submit(dialog: Locator) -> None:
    await dialog.get_by_role("button", name="Submit").click()
