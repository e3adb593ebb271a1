"""The Temporal Web UI as people at the gate use it, in a real browser (headless chromium): find
the waiting deployment in the run list, open it, and send the `approve` Update through
More Actions -> Send an Update. A name outside `approvers` is refused with the validator's
reason shown in the dialog; a listed approver's Update promotes the canary.

The dev server of `temporal_env` serves the UI (2.54) on `ui_port`; the worker and the ECS
emulator are the in-process ones every end-to-end test uses. Playwright (the dev extra) drives
Debian's chromium: without it the module skips, saying how to get it; CI installs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

pytest.importorskip(
    "playwright", reason="Web UI browser tests need playwright, in the dev extra: make venv"
)

from playwright.async_api import Page, expect  # noqa: E402

from ecs_canary.web_ui import list_link  # noqa: E402
from scripts import browser  # noqa: E402
from tests.helpers import gate_is_open, wait_until  # noqa: E402

if not browser.CHROMIUM.is_file():
    pytest.skip(
        f"Web UI browser tests need chromium ({browser.CHROMIUM}): apt-get install chromium "
        "(CI installs it)",
        allow_module_level=True,
    )

APPROVERS = ["alice", "bob"]


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with browser.chromium_page() as opened:
        yield opened


@pytest.mark.slow
async def test_an_approver_decides_in_the_web_ui_after_a_refused_update(
    worker, requests, deploy, client, task_queue, ui_port, page, monkeypatch
):
    monkeypatch.setenv("TEMPORAL_UI_URL", f"http://127.0.0.1:{ui_port}")
    handle = await deploy(requests.raw(verification={"approvers": APPROVERS}))
    await wait_until(lambda: gate_is_open(handle), timeout=60)
    # The docs' list of waiting deployments, narrowed to this test's runs.
    waiting = f"TaskQueue='{task_queue}' AND {browser.WAITING}"
    await wait_until(lambda: _listed(client, waiting, handle.result_run_id))

    await page.goto(list_link(client.namespace, waiting))
    await page.get_by_role("link", name=handle.result_run_id).click()
    dialog = await browser.open_update_dialog(page)
    listed = await browser.fill_update(dialog, "approve", {"by": "mallory"})
    assert "Approve the canary" in listed  # the handler's description
    await browser.submit(dialog)
    refusal = "'mallory' may not decide this deployment; allowed: alice, bob"
    alert = dialog.get_by_role("alert").filter(has_text=refusal)
    await expect(alert).to_be_visible(timeout=browser.TIMEOUT_MS)
    # A refusal is an answer, not a crash: no stack trace (and no worker paths) under it.
    assert ".py" not in await alert.inner_text()

    await browser.fill_update(dialog, "approve", {"by": "alice", "reason": "error rate flat"})
    await browser.submit(dialog)
    await expect(dialog).to_be_hidden(timeout=browser.TIMEOUT_MS)
    result = await handle.result()
    await page.reload()  # the page polls for news every few seconds; a person may reload too
    await expect(browser.run_status(page)).to_have_text(
        browser.COMPLETED, timeout=browser.TIMEOUT_MS
    )

    assert result.outcome == "succeeded"
    decision = result.decision
    assert (decision.action, decision.by, decision.via) == ("approve", "alice", "update")
    assert decision.reason == "error rate flat"
    # A refused Update never reaches the run's history: only the approval is recorded.
    assert [(a.by, a.via, a.accepted) for a in result.attempts] == [("alice", "update", True)]


async def _listed(client, query: str, run_id: str | None) -> bool:
    """Visibility (what the run list shows) lags the run's own state a little."""
    return run_id in {execution.run_id async for execution in client.list_workflows(query)}
