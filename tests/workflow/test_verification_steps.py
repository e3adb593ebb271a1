"""Verification steps between the canary and the gate, with fake step activities and a fake
check workflow on the time-skipping server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError

from ecs_canary.models import DeploymentStatus, Outcome
from ecs_canary.steps import StepVerdict
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service


def _steps(**extra: Any) -> dict[str, Any]:
    return {
        "steps": [
            {"name": "smoke", "type": "run_task", "count": 1},
            {"name": "health", "type": "http", "url": "http://127.0.0.1:9/health"},
            {
                "name": "errors",
                "type": "metrics",
                "namespace": "MyApp",
                "metric_name": "Http5xx",
                "max_value": 5,
            },
        ],
        **extra,
    }


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    fake_ecs.services["myapp"] = running_service("myapp")
    return fake_ecs


async def _status(handle) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def _gate_open(handle) -> DeploymentStatus:
    async with asyncio.timeout(30):
        while not (current := await _status(handle)).gate_open:
            await asyncio.sleep(0.05)
    return current


async def test_steps_run_in_order_and_the_gate_opens_when_all_passed(existing, start):
    handle = await start(request(verification=_steps()))
    opened = await _gate_open(handle)

    assert [(s.name, s.type, s.state) for s in opened.verification_steps] == [
        ("smoke", "run_task", "passed"),
        ("health", "http", "passed"),
        ("errors", "metrics", "passed"),
    ]
    assert all(s.started_at and s.ended_at for s in opened.verification_steps)
    step_calls = [n for n in existing.names() if n.endswith("_step")]
    assert step_calls == ["run_task_step", "http_step", "metrics_step"]
    (run_task,) = existing.inputs("run_task_step")
    assert run_task.canary_task_definition_arn.endswith("myapp-task:2")
    assert run_task.started_by.endswith(":smoke")
    (metrics,) = existing.inputs("metrics_step")
    assert (metrics.canary_service, metrics.main_service) == ("myappCanary", "myapp")
    await handle.execute_update("approve", {"by": "alice"})
    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED and len(result.verification_steps) == 3


async def test_a_failed_step_rejects_the_canary_and_skips_the_rest(existing, start):
    existing.steps["smoke"] = StepVerdict(passed=False, summary="container web exited 1")
    result = await (await start(request(verification=_steps()))).result()

    assert result.outcome == Outcome.REJECTED and result.canary_deleted
    assert result.decision is not None
    assert (result.decision.via, result.decision.by) == ("step", "step:smoke")
    assert result.reason and "verification step smoke failed: container web exited 1" in (
        result.reason
    )
    assert [s.state for s in result.verification_steps] == ["failed", "cancelled", "cancelled"]
    assert existing.inputs("update_service") == []


async def test_with_on_step_failure_gate_a_person_decides_after_a_failed_step(existing, start):
    existing.steps["health"] = StepVerdict(passed=False, summary="request 3: status 503")
    body = request(verification=_steps(on_step_failure="gate", require_approval=False))
    handle = await start(body)
    opened = await _gate_open(handle)  # a failed step opens the gate even without approval

    assert [s.state for s in opened.verification_steps] == ["passed", "failed", "passed"]
    await handle.signal("approve", {"by": "alice", "reason": "503s were a known blip"})
    assert (await handle.result()).outcome == Outcome.SUCCEEDED


async def test_an_approval_while_steps_run_is_refused_and_a_rejection_stops_the_step(
    existing, start
):
    existing.steps["smoke"] = "hang"
    handle = await start(request(verification=_steps()))
    await existing.hanging.wait()

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", {"by": "alice"})
    assert "verification steps are still running" in str(refused.value.cause)
    await handle.execute_update("reject", {"by": "alice", "reason": "smoke hangs"})
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED
    assert existing.hang_cancelled.is_set(), "the step was stopped before the canary went"
    assert [s.state for s in result.verification_steps] == ["cancelled"] * 3
    assert existing.names().index("delete_service") > existing.names().index("run_task_step")


async def test_a_check_workflow_step_passes_or_fails_by_its_answer(existing, start, fake_worker):
    steps = [
        {"name": "e2e", "type": "workflow", "workflow_type": "FakeCheck", "task_queue": fake_worker}
    ]
    passing = request(verification={"steps": [{**steps[0], "input": "pass"}]})
    handle = await start(passing)
    opened = await _gate_open(handle)
    assert opened.verification_steps[0].summary == "myappCanary: pass"
    await handle.signal("reject", {"by": "alice"})
    await handle.result()

    failing = request(verification={"steps": [{**steps[0], "input": "fail"}]})
    result = await (await start(failing)).result()
    assert result.outcome == Outcome.REJECTED
    assert result.verification_steps[0].state == "failed"


async def test_a_cancel_during_a_check_workflow_cancels_the_child(
    existing, start, fake_worker, time_skipping
):
    step = {
        "name": "e2e",
        "type": "workflow",
        "workflow_type": "FakeCheck",
        "task_queue": fake_worker,
        "input": "hang",
    }
    handle = await start(request(verification={"steps": [step]}))
    child = time_skipping.client.get_workflow_handle(f"{handle.id}/verify/e2e")
    async with asyncio.timeout(30):
        while True:
            try:
                if (await child.describe()).status is not None:
                    break
            except Exception:  # not started yet
                await asyncio.sleep(0.05)
    await handle.cancel()
    # Waited for before the run's result: waiting on a result lets the time-skipping server
    # jump ahead, and a jump past the child's own timeout would end it TIMED_OUT before the
    # cancel reached it.
    async with asyncio.timeout(30):
        while (await child.describe()).status.name == "RUNNING":
            await asyncio.sleep(0.05)
    assert (await child.describe()).status.name == "CANCELED"
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    assert isinstance(failed.value.cause, CancelledError)
    assert (await _status(handle)).verification_steps[0].state == "cancelled"
