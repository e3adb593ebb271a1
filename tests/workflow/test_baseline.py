"""Canary analysis's baseline on the time-skipping server with fake activities: created beside
the canary from the main service's task definition at the canary's count, steady before the
verification stage, deleted with the canary on every way out, and a first deployment refused
before any call that changes ECS."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, CancelledError

from ecs_canary.models import Outcome
from ecs_canary.names import RUN_ID_TAG, WORKFLOW_ID_TAG
from tests.workflow.conftest import request
from tests.workflow.fakes import NEW_ARN, OLD_ARN, FakeEcs, running_service
from tests.workflow.reading import failure_of, result_of, status_of, until

# One short interval (judged by the fake judge: pass), so the gate opens right after it; the
# analysis itself: test_canary_analysis.py.
ANALYSIS = {
    "interval_seconds": 0.1,  # the interval ends in real time while a test polls status
    "intervals": 1,
    "metrics": [
        {
            "name": "errors",
            "namespace": "ECS/Emulator",
            "metric_name": "Errors",
            "dimensions": {"ClusterName": "{cluster}", "ServiceName": "{service}"},
            "stat": "Sum",
        }
    ]
}
# What changes ECS; a refused run makes none of these calls.
CHANGES = {"register_task_definition", "create_service", "update_service", "delete_service"}


def analysed(**verification: Any) -> dict[str, Any]:
    """A request with canary analysis and a canary of 2 tasks (`verification` fields added)."""
    return request(canary={"desired_count": 2}, verification={"analysis": ANALYSIS, **verification})


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    return fake_ecs


def _deleted(fake: FakeEcs) -> list[str]:
    return sorted(d.service for d in fake.inputs("delete_service"))


async def test_the_baseline_starts_beside_the_canary_and_goes_with_it(existing, start):
    handle = await start(analysed())
    await until(handle, "verification", gate_open=True)
    gate = await status_of(handle)
    await handle.execute_update("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    assert result.canary_deleted and result.baseline_deleted
    creates = {c.service: c for c in existing.inputs("create_service")}
    canary, baseline = creates["myappCanary"], creates["myappBaseline"]
    assert (baseline.task_definition_arn, baseline.desired_count) == (OLD_ARN, 2)
    assert (canary.task_definition_arn, canary.desired_count) == (NEW_ARN, 2)
    assert baseline.tags == canary.tags and set(baseline.tags) == {WORKFLOW_ID_TAG, RUN_ID_TAG}
    # Both created before either is waited for, and both steady before the gate opened.
    names = [(n, getattr(arg, "service", None)) for n, arg in existing.calls]
    first_wait = min(i for i, (n, _) in enumerate(names) if n == "wait_for_steady_state")
    assert {s for n, s in names[:first_wait] if n == "create_service"} == set(creates)
    assert gate.baseline is not None
    assert (gate.baseline.service, gate.baseline.task_definition_arn) == ("myappBaseline", OLD_ARN)
    assert (gate.baseline.running_count, gate.baseline.desired_count) == (2, 2)
    assert not gate.baseline.deleted
    assert _deleted(existing) == ["myappBaseline", "myappCanary"]
    waited = [w.service for w in existing.inputs("wait_for_inactive")]
    assert sorted(waited) == ["myappBaseline", "myappCanary"]
    final = await status_of(handle)
    assert final.baseline is not None and final.baseline.deleted
    (update,) = existing.inputs("update_service")
    assert update.service == "myapp"


async def test_without_analysis_there_is_no_baseline(existing, start):
    handle = await start(request(verification={"timeout_seconds": 1}))
    result = await handle.result()

    assert result.baseline_deleted is None and (await status_of(handle)).baseline is None
    assert [c.service for c in existing.inputs("create_service")] == ["myappCanary"]


@pytest.mark.abandons_activity  # the canary's wait times out while its fake still runs
async def test_a_canary_that_never_gets_steady_takes_the_baseline_with_it(existing, start):
    """(A baseline that fails to start, and a cancel while both start, on the real server:
    tests/e2e/test_baseline.py; on this server a cancel that meets the rollback check's answer
    in one workflow task has been seen to stall the test server.)"""
    existing.waits[("myappCanary", "canary_deploy")] = "hang"
    body = analysed()
    body["stage_timeouts"] = {"canary_deploy": 0.5}  # real time: the hanging wait is in flight
    error = await failure_of(await start(body))

    assert isinstance(error, ApplicationError) and error.type == "Timeout"
    result = result_of(error)
    assert result.canary_deleted and result.baseline_deleted
    assert _deleted(existing) == ["myappBaseline", "myappCanary"]
    assert existing.inputs("update_service") == []


@pytest.mark.parametrize("ending", ["reject", "cancel", "timeout"])
async def test_every_way_out_of_the_gate_deletes_the_baseline(existing, start, ending):
    handle = await start(analysed(timeout_seconds=600))
    await until(handle, "verification", gate_open=True)
    if ending == "reject":
        await handle.signal("reject", {"by": "alice"})
        assert (await handle.result()).outcome == Outcome.REJECTED
    elif ending == "cancel":
        await handle.cancel()
        assert isinstance(await failure_of(handle), CancelledError)
    else:
        assert (await handle.result()).outcome == Outcome.REJECTED  # the server skips 600 s

    assert _deleted(existing) == ["myappBaseline", "myappCanary"]
    final = await status_of(handle)
    assert final.result is not None and final.result.baseline_deleted
    assert final.baseline is not None and final.baseline.deleted


async def test_a_leftover_baseline_is_removed_before_the_new_one_starts(existing, start):
    existing.services["myappBaseline"] = running_service("myappBaseline", desired=1)
    handle = await start(analysed(timeout_seconds=1))
    assert (await handle.result()).outcome == Outcome.REJECTED

    services = [(n, getattr(a, "service", None)) for n, a in existing.calls]
    removed = services.index(("delete_service", "myappBaseline"))
    assert removed < services.index(("register_task_definition", "myappCanary"))
    assert services.index(("wait_for_inactive", "myappBaseline")) < services.index(
        ("create_service", "myappBaseline")
    )
    assert _deleted(existing) == ["myappBaseline", "myappBaseline", "myappCanary"]


async def test_a_first_deployment_with_analysis_is_refused_before_any_change(fake_ecs, start):
    error = await failure_of(await start(analysed()))

    assert isinstance(error, ApplicationError) and error.type == "Refused"
    assert "service myapp does not exist yet" in error.message
    assert not CHANGES & set(fake_ecs.names())
    (described,) = fake_ecs.inputs("describe_services")
    assert described.services == ["myapp", "myappCanary", "myappBaseline"]
    result = result_of(error)
    assert result.baseline_deleted and result.canary_deleted
