"""`python scripts/screenshots.py`: the Web UI screenshots of docs/web-ui.md, taken by the project
itself so that they show what today's UI and workflow really show.

    make up && .venv/bin/python scripts/screenshots.py && make down

On the local stack (Temporal at 127.0.0.1:$TEMPORAL_PORT, its UI on $TEMPORAL_UI_PORT or
$TEMPORAL_UI_URL, the ECS emulator), it prepares the emulator as `make demo` does (reset, the
example request with the emulator's ids, `myapp` at its previous release), starts the example
deployment with approvers alice and bob as `starter.py deploy` does (so the run carries its
summary and details), waits for the gate, and in headless chromium takes into docs/images/:

- web-ui-waiting.png: the run list filtered to deployments waiting at the gate;
- web-ui-user-metadata.png: the run's User Metadata (summary, details, current details);
- web-ui-update-names.png: More Actions -> Send an Update, its list of the run's Updates;
- web-ui-send-update.png: the dialog with `approve` and {"by": "alice"} filled in;
- web-ui-approved.png: the run's page once that Update promoted the canary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.async_api import Page, expect  # noqa: E402
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle  # noqa: E402
from temporalio.service import RPCError, RPCStatusCode  # noqa: E402

from cli.commands import deploy  # noqa: E402
from ecs_canary.models import DeploymentRequest, DeploymentResult  # noqa: E402
from ecs_canary.names import workflow_id_for  # noqa: E402
from ecs_canary.temporal import DATA_CONVERTER  # noqa: E402
from ecs_canary.web_ui import list_link  # noqa: E402
from scripts import demo  # noqa: E402
from scripts.browser import (  # noqa: E402
    CHROMIUM,
    COMPLETED,
    TIMEOUT_MS,
    VIEWPORT,
    WAITING,
    chromium_page,
    fill_update,
    open_update_dialog,
    run_status,
    submit,
)

IMAGES = ROOT / "docs" / "images"
APPROVERS = ["alice", "bob"]
# How long the run list (visibility) may lag behind the run.
LISTED_TIMEOUT = 30


async def start_waiting_deployment(client: Client) -> WorkflowHandle:
    """The example deployment, started as `starter.py deploy` starts it, once its gate is open;
    a run left open by an earlier try is terminated first (the emulator is reset under it)."""
    raw = json.loads(demo.EXAMPLE.read_text())
    workflow_id = workflow_id_for(raw["cluster"], raw["service_name"])
    earlier = client.get_workflow_handle(workflow_id)
    try:
        if (await earlier.describe()).status == WorkflowExecutionStatus.RUNNING:
            await earlier.terminate("superseded by scripts/screenshots.py")
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:  # not found: no run with this id yet
            raise
    seed = demo.emulator("reset", "POST")
    request = json.loads(demo.write_resolved(demo.EXAMPLE, seed).read_text())
    demo.seed_existing_service(request)
    request["verification"]["approvers"] = APPROVERS
    options = argparse.Namespace(workflow_id=None, wait=False, task_queue=None)
    await deploy(client, options, DeploymentRequest.model_validate(request))
    handle = client.get_workflow_handle(workflow_id, result_type=DeploymentResult)
    handle = client.get_workflow_handle(
        workflow_id, run_id=(await handle.describe()).run_id, result_type=DeploymentResult
    )
    await demo.wait_for_gate(handle)
    return handle


async def wait_until_listed(client: Client, run_id: str) -> None:
    deadline = time.monotonic() + LISTED_TIMEOUT
    while run_id not in {run.run_id async for run in client.list_workflows(WAITING)}:
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} not listed by {WAITING!r} within {LISTED_TIMEOUT}s")
        await asyncio.sleep(0.5)


async def shoot(page: Page, name: str, whole: bool = False) -> None:
    """A screenshot of the viewport; `whole`: of the whole page, the viewport made as tall as
    the page's content pane (the `main` landmark), which scrolls on its own, so Playwright's
    full-page screenshot would not unroll it."""
    path = IMAGES / name
    if whole:
        height = await page.get_by_role("main").evaluate(
            "main => Math.ceil(main.getBoundingClientRect().top + main.scrollHeight)"
        )
        await page.set_viewport_size({**VIEWPORT, "height": max(height, VIEWPORT["height"])})
    await page.screenshot(path=path)
    await page.set_viewport_size(VIEWPORT)
    print(f"wrote {path.relative_to(ROOT)}", flush=True)


async def screenshots() -> int:
    if not CHROMIUM.is_file():
        raise SystemExit(f"no chromium at {CHROMIUM}: apt-get install chromium")
    client = await Client.connect(demo.ADDRESS, data_converter=DATA_CONVERTER)
    handle = await start_waiting_deployment(client)
    run_id = handle.run_id
    assert run_id is not None
    await wait_until_listed(client, run_id)
    IMAGES.mkdir(parents=True, exist_ok=True)
    async with chromium_page() as page:
        await page.goto(list_link(client.namespace, WAITING))
        run_link = page.get_by_role("link", name=run_id)
        await expect(run_link).to_be_visible(timeout=TIMEOUT_MS)
        await shoot(page, "web-ui-waiting.png")

        await run_link.click()
        await page.get_by_role("tab", name="User Metadata").click()
        await expect(page.get_by_text("Current Details")).to_be_visible(timeout=TIMEOUT_MS)
        await shoot(page, "web-ui-user-metadata.png", whole=True)

        dialog = await open_update_dialog(page)
        await fill_update(
            dialog,
            "approve",
            {"by": "alice"},
            while_listed=lambda: shoot(page, "web-ui-update-names.png"),
        )
        await shoot(page, "web-ui-send-update.png")

        await submit(dialog)
        await expect(dialog).to_be_hidden(timeout=TIMEOUT_MS)
        result = await handle.result()
        await page.get_by_role("tab", name="Timeline").click()
        await page.reload()  # at once, rather than at the page's next poll
        await expect(run_status(page)).to_have_text(COMPLETED, timeout=TIMEOUT_MS)
        await shoot(page, "web-ui-approved.png")
    print(f"outcome: {result.outcome.value}, decided by {result.decision and result.decision.by}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(screenshots()))
