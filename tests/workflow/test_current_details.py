"""The Web UI's current details follow the run's state by themselves: no part of the run
redraws them, yet a decision taken in a signal handler, a verification step's progress and
the run's end are all shown (`workflows.run_part.RunContext.keep_details_current`)."""

from __future__ import annotations

from ecs_canary.models import Outcome
from tests.helpers import wait_for_stage, wait_until
from tests.workflow.conftest import request
from tests.workflow.reading import details_of


async def test_an_approval_taken_by_a_signal_handler_is_shown_at_once(start):
    handle = await start(request(verification={"approvers": ["alice", "bob"], "min_approvals": 2}))
    await wait_for_stage(handle, "verification", gate_open=True)
    assert "**Approvals:** none yet (0 of 2)" in await details_of(handle)

    await handle.signal("approve", {"by": "alice"})

    async def shown() -> bool:
        return "**Approvals:** alice (1 of 2)" in await details_of(handle)

    await wait_until(shown)
    await handle.signal("reject", {"by": "bob", "reason": "error rate up"})
    assert (await handle.result()).outcome == Outcome.REJECTED
    final = await details_of(handle)
    assert "**Stage:** finished" in final
    assert "**Decision:** reject (signal) by bob: error rate up" in final


async def test_a_verification_steps_progress_is_shown_without_a_redraw(start):
    step = {"name": "smoke", "type": "http", "url": "http://127.0.0.1:9/health"}
    handle = await start(request(verification={"steps": [step]}))
    await wait_for_stage(handle, "verification", gate_open=True)
    details = await details_of(handle)
    assert "**Verify smoke (http):** passed" in details
    assert "**Gate open:** decide by " in details
    # The approve command names this run: a decision is for one run.
    assert f"--workflow-id {handle.id} --run-id {handle.result_run_id} --name approve" in details
    await handle.signal("reject", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.REJECTED
