"""The gate's times stay true long after they were set. `status` reports instants (the gate's
deadline, the bake's end) and the reader works out what is left: a countdown computed in the
query used the time of the last workflow task, and was wrong as soon as time passed without
one. On the time-skipping server `env.sleep` moves the clock on by minutes with no workflow
task in between, which is exactly that case."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from cli.format import gate_text
from ecs_canary.models import DeploymentResult, DeploymentStatus, Outcome, Stage
from tests.helpers import status, wait_for_stage, wait_until
from tests.workflow.conftest import request

FIVE_MINUTES = timedelta(minutes=5)


def _verification_started(current: DeploymentStatus) -> datetime:
    (timing,) = [t for t in current.stages if t.stage == Stage.VERIFICATION]
    return timing.started_at


async def _reject(handle: WorkflowHandle[Any, DeploymentResult]) -> None:
    await handle.signal("reject", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.REJECTED


async def test_the_gate_deadline_is_right_long_after_the_gate_opened(
    start, time_skipping: WorkflowEnvironment
):
    handle = await start(request(verification={"timeout_seconds": 600}))
    opened = await wait_for_stage(handle, "verification", gate_open=True)
    # With no bake and no steps the gate opens in the workflow task that began verification.
    opened_at = _verification_started(opened)
    assert opened.gate_deadline == opened_at + timedelta(seconds=600)

    await time_skipping.sleep(FIVE_MINUTES.total_seconds())
    later = await status(handle)
    now = await time_skipping.get_current_time()

    assert later.gate_open and later.gate_deadline == opened_at + timedelta(seconds=600)
    assert now - opened_at >= FIVE_MINUTES
    assert later.gate_deadline - now <= FIVE_MINUTES  # a countdown from the query said 10m
    shown = gate_text(later, now)
    assert re.fullmatch(r"OPEN, decide by \d\d:\d\d:\d\d UTC \((4m\d+s|5m) left\)", shown), shown
    await _reject(handle)


async def test_the_bake_end_and_then_the_deadline_stay_right_while_time_passes(
    start, time_skipping: WorkflowEnvironment
):
    handle = await start(request(verification={"bake_seconds": 600, "timeout_seconds": 1800}))

    async def baking() -> DeploymentStatus | None:
        current = await status(handle)
        return current if current.bake_ends_at is not None else None

    started = _verification_started(await wait_until(baking))
    bake_end = started + timedelta(seconds=600)

    await time_skipping.sleep(FIVE_MINUTES.total_seconds())
    later = await status(handle)
    now = await time_skipping.get_current_time()
    assert (later.bake_ends_at, later.gate_open, later.gate_deadline) == (bake_end, False, None)
    assert timedelta(0) < later.bake_ends_at - now <= FIVE_MINUTES

    # The bake's timer fires; the gate opens in the workflow task that follows it.
    await time_skipping.sleep(FIVE_MINUTES.total_seconds() + 60)
    opened = await wait_for_stage(handle, "verification", gate_open=True)
    assert opened.bake_ends_at is None and opened.gate_deadline is not None
    opened_at = opened.gate_deadline - timedelta(seconds=1800)
    assert bake_end <= opened_at <= await time_skipping.get_current_time()

    await time_skipping.sleep(FIVE_MINUTES.total_seconds())
    assert (await status(handle)).gate_deadline == opened.gate_deadline
    await _reject(handle)
