"""Pause, resume and freeze windows of a deployment on the time-skipping server (issue 26): the
real workflow, fake ECS activities whose canary wait and verification step end when the test
says (and the fake judge of canary analysis), and the real policy file read through the start
checks and the decision checks.

While paused nothing moves, however much time passes: no next stage, no next step, no timer
running out; once resumed, each timer runs for the time it had left. A freeze window of the
policy holds a run at its start and before its rollout until the window ends, unless an
approver overrides it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.decisions import verify_decision
from ecs_canary.models import (
    DeploymentResult,
    DeploymentStatus,
    Outcome,
    Stage,
    SteadyState,
    WaitSteadyInput,
)
from ecs_canary.notification_messages import NotificationInput, NotificationOutcome
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.policy import SIGNED_DECISIONS_ENV as POLICY_ENV
from ecs_canary.signing import KEYS_ENV
from ecs_canary.steps import HttpStepInput, StepVerdict
from tests.helpers import wait_until
from tests.helpers.signing import Approver, write_jwks
from tests.workflow.conftest import request
from tests.workflow.fake_analysis import FakeJudge
from tests.workflow.fakes import FakeEcs, running_service
from tests.workflow.reading import failure_of
from tests.workflow.test_canary_analysis import INTERVAL, with_analysis
from workflows.canary import EcsCanaryDeployment

# Each moves the clock by hours: on a server of its own (tests/workflow/conftest.py).
pytestmark = pytest.mark.own_clock

Handle = WorkflowHandle[Any, DeploymentResult]
HOUR = 3600


class Releases:
    """The canary's wait for steady state, and each `http` step, end when the test releases
    them; `started` says which have begun."""

    def __init__(self) -> None:
        self.released: dict[str, asyncio.Event] = {}
        self.started: set[str] = set()

    def release(self, name: str) -> None:
        self._event(name).set()

    def _event(self, name: str) -> asyncio.Event:
        return self.released.setdefault(name, asyncio.Event())

    async def hold(self, name: str) -> None:
        self.started.add(name)
        while not self._event(name).is_set():
            activity.heartbeat()
            await asyncio.sleep(0.05)


@pytest.fixture
def releases() -> Releases:
    return Releases()


@pytest.fixture
def notified() -> list[NotificationInput]:
    """The notifications the run sent (to a stand-in of the notification activity)."""
    return []


@pytest.fixture
def policy_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Write the worker's policy file (read by the start checks and each decision check)."""
    path = tmp_path / "policy.json"
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    monkeypatch.delenv(POLICY_ENV, raising=False)

    def write(**policy: Any) -> None:
        path.write_text(json.dumps(policy, default=str))

    write()
    return write


@pytest.fixture
async def fake_worker(
    time_skipping: WorkflowEnvironment,
    fake_ecs: FakeEcs,
    fake_judge: FakeJudge,
    releases: Releases,
    notified: list[NotificationInput],
    policy_file: Any,
) -> AsyncIterator[str]:
    """The conftest's worker (for its `start`), except that the canary's wait for steady state
    and the `http` steps wait for the test's release."""
    fake_ecs.services["myapp"] = running_service("myapp")
    activities = fake_ecs.activities()
    waits = next(a for a in activities if a.__name__ == "wait_for_steady_state")

    @activity.defn(name="wait_for_steady_state")
    async def wait_for_steady_state(request: WaitSteadyInput) -> SteadyState:
        if request.stage == Stage.CANARY_DEPLOY:
            await releases.hold("canary")
        result: SteadyState = await waits(request)
        return result

    @activity.defn(name="http_step")
    async def http_step(request: HttpStepInput) -> StepVerdict:
        fake_ecs.calls.append(("http_step", request))
        await releases.hold(request.step.name)
        return StepVerdict(passed=True, summary="ok")

    @activity.defn(name="send_notification")
    async def send_notification(request: NotificationInput) -> NotificationOutcome:
        notified.append(request)
        return NotificationOutcome(status_code=200, attempts=1)

    replaced = {"wait_for_steady_state", "http_step"}
    name = f"pause-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_skipping.client,
        task_queue=name,
        workflows=[EcsCanaryDeployment],
        activities=[
            *(a for a in activities if a.__name__ not in replaced),
            wait_for_steady_state,
            http_step,
            send_notification,
            fake_judge.activity(),
            verify_decision,
        ],
    ):
        yield name


async def _status(handle: Handle) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def _until(handle: Handle, holds: Callable[[DeploymentStatus], bool]) -> DeploymentStatus:
    async def check() -> DeploymentStatus | None:
        current = await _status(handle)
        return current if holds(current) else None

    return await wait_until(check)


async def _send(handle: Handle, action: str, by: str = "alice", **more: Any) -> DeploymentStatus:
    return await handle.execute_update(
        action, {"by": by, **more}, result_type=DeploymentStatus
    )


def _holds(status: DeploymentStatus | DeploymentResult) -> list[tuple[str, str | None, bool]]:
    """The pauses, resumes and freeze overrides among the attempts (the audit)."""
    return [
        (a.action, a.by, a.accepted)
        for a in status.attempts
        if a.action in ("pause", "resume", "override_freeze")
    ]


def _started(status: DeploymentStatus | DeploymentResult, stage: Stage) -> datetime:
    (timing,) = [t for t in status.stages if t.stage == stage]
    return timing.started_at


GATED = {"require_approval": True, "timeout_seconds": HOUR}


async def test_a_pause_during_the_canary_deploy_lets_the_wait_finish_and_starts_nothing_more(
    start, releases, fake_ecs, time_skipping
):
    handle = await start(request(verification={**GATED, "bake_seconds": 600}))
    await wait_until(lambda: "canary" in releases.started)

    paused = await _send(handle, "pause", reason="incident elsewhere")
    assert paused.paused is not None
    assert (paused.paused.by, paused.paused.reason) == ("alice", "incident elsewhere")
    releases.release("canary")  # the wait in flight finishes
    await time_skipping.sleep(2 * HOUR)

    held = await _status(handle)
    assert held.stage == Stage.CANARY_DEPLOY and held.running_count == 1
    assert held.bake_ends_at is None and not held.gate_open
    assert "set_rule_actions" not in fake_ecs.names()  # nothing after the wait

    resumed = await _send(handle, "resume", reason="incident over")
    assert resumed.paused is None
    baking = await _until(handle, lambda s: s.bake_ends_at is not None)
    assert baking.bake_ends_at == _started(baking, Stage.VERIFICATION) + timedelta(seconds=600)
    await handle.signal("reject", {"by": "alice"})
    result = await handle.result()
    assert result.outcome == Outcome.REJECTED
    assert _holds(result) == [("pause", "alice", True), ("resume", "alice", True)]


async def test_the_bake_stops_while_paused_and_resumes_with_what_was_left(
    start, releases, time_skipping
):
    releases.release("canary")
    handle = await start(request(verification={**GATED, "bake_seconds": 600}))
    baking = await _until(handle, lambda s: s.bake_ends_at is not None)
    first_end = baking.bake_ends_at
    assert first_end is not None

    await time_skipping.sleep(200)
    paused = await _send(handle, "pause")
    assert paused.paused is not None
    await time_skipping.sleep(2 * HOUR)
    still = await _status(handle)
    assert not still.gate_open and still.bake_ends_at == first_end  # not counting
    resumed = await _send(handle, "resume")
    assert resumed.paused is None

    # The bake ends later by the time it was paused: about 400 s from now, not at once.
    assert resumed.bake_ends_at is not None
    paused_for = resumed.bake_ends_at - first_end
    assert paused_for >= timedelta(seconds=2 * HOUR)
    assert paused_for == _resumed_at(resumed) - paused.paused.at
    await time_skipping.sleep(300)
    assert not (await _status(handle)).gate_open
    await time_skipping.sleep(200)
    opened = await _until(handle, lambda s: s.gate_open)
    assert opened.gate_deadline is not None
    await handle.signal("reject", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.REJECTED


def _resumed_at(status: DeploymentStatus) -> datetime:
    (resume,) = [a for a in status.attempts if a.action == "resume"]
    return resume.at


async def test_a_pause_during_a_verification_step_starts_no_next_step(
    start, releases, fake_ecs, time_skipping
):
    steps = [
        {"name": "first", "type": "http", "url": "http://127.0.0.1:9/a"},
        {"name": "second", "type": "http", "url": "http://127.0.0.1:9/b"},
    ]
    releases.release("canary")
    handle = await start(request(verification={**GATED, "steps": steps}))
    await wait_until(lambda: "first" in releases.started)

    await _send(handle, "pause")
    releases.release("first")  # the step in flight finishes and passes
    releases.release("second")
    await _until(handle, lambda s: s.verification_steps[0].state == "passed")
    await time_skipping.sleep(2 * HOUR)
    held = await _status(handle)
    assert [s.state for s in held.verification_steps] == ["passed", "pending"]
    assert "second" not in releases.started and not held.gate_open

    await _send(handle, "resume")
    opened = await _until(handle, lambda s: s.gate_open)
    assert [s.state for s in opened.verification_steps] == ["passed", "passed"]
    await handle.signal("approve", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.SUCCEEDED


async def test_the_gate_never_times_out_while_paused_and_its_deadline_moves_on(
    start, releases, time_skipping
):
    releases.release("canary")
    handle = await start(request(verification={**GATED, "on_timeout": "approve"}))
    opened = await _until(handle, lambda s: s.gate_open)
    deadline = opened.gate_deadline
    assert deadline is not None

    await time_skipping.sleep(HOUR / 2)
    await _send(handle, "pause")
    await time_skipping.sleep(5 * HOUR)  # far past the deadline
    held = await _status(handle)
    assert held.gate_open and held.decision is None and held.paused is not None

    resumed = await _send(handle, "resume")
    assert resumed.gate_deadline is not None and resumed.gate_deadline > deadline + timedelta(
        hours=4
    )
    result = await handle.result()  # the half hour left runs out
    assert result.outcome == Outcome.SUCCEEDED
    assert result.decision is not None and result.decision.via == "timeout"
    assert result.decision.at >= resumed.gate_deadline


async def test_an_analysis_interval_stops_while_paused_and_covers_the_time_paused(
    start, releases, fake_judge, time_skipping
):
    releases.release("canary")
    handle = await start(with_analysis())
    await _until(handle, lambda s: s.analysis is not None and s.analysis.state == "running")
    await time_skipping.sleep(100)
    paused = await _send(handle, "pause")
    await time_skipping.sleep(2 * HOUR)
    assert fake_judge.inputs == []  # the first interval has not ended

    resumed = await _send(handle, "resume")
    assert paused.paused is not None
    paused_for = _resumed_at(resumed) - paused.paused.at
    await time_skipping.sleep(INTERVAL - 100 - 50)
    assert fake_judge.inputs == []  # 50 s of it are left
    await time_skipping.sleep(100)
    judged = await _until(handle, lambda s: bool(s.analysis and s.analysis.intervals))
    assert judged.analysis is not None
    (first,) = judged.analysis.intervals
    assert first.ended_at - first.started_at == timedelta(seconds=INTERVAL) + paused_for
    assert fake_judge.inputs[0].ended_at == first.ended_at  # its metrics cover the pause too
    await handle.cancel()
    assert isinstance(await failure_of(handle), CancelledError)


async def test_a_cancel_while_paused_still_deletes_the_canary(start, releases, fake_ecs):
    releases.release("canary")
    handle = await start(request(verification=GATED))
    await _until(handle, lambda s: s.gate_open)
    await _send(handle, "pause")

    await handle.cancel()
    cause = await failure_of(handle)
    assert isinstance(cause, CancelledError)
    deleted = [c.service for c in fake_ecs.inputs("delete_service")]
    assert deleted == ["myappCanary"]


async def test_pause_and_resume_are_refused_when_they_change_nothing_or_come_from_a_stranger(
    start, releases, policy_file
):
    policy_file(approvers=["alice", "bob"])
    releases.release("canary")
    handle = await start(request(verification=GATED))
    await _until(handle, lambda s: s.gate_open)

    with pytest.raises(WorkflowUpdateFailedError) as not_paused:
        await _send(handle, "resume")
    assert "not paused" in str(not_paused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as stranger:
        await _send(handle, "pause", by="mallory")
    assert "'mallory' may not decide" in str(stranger.value.cause)
    await handle.signal("pause", {"by": "mallory"})  # a signal's refusal is recorded
    await _send(handle, "pause", by="bob")
    with pytest.raises(WorkflowUpdateFailedError) as twice:
        await _send(handle, "pause")
    assert "already paused (by bob" in str(twice.value.cause)

    current = await _status(handle)
    assert current.paused is not None and current.paused.by == "bob"
    # Listed for the Web UI's "Send an Update" and `temporal workflow metadata` with the rest.
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    holds = {"pause", "resume", "override_freeze"}
    assert holds <= {update.name for update in metadata.definition.update_definitions}
    assert holds <= {signal.name for signal in metadata.definition.signal_definitions}
    assert _holds(current) == [("pause", "mallory", False), ("pause", "bob", True)]
    await handle.cancel()
    assert isinstance(await failure_of(handle), CancelledError)


# --- Freeze windows ---------------------------------------------------------------------------


async def _now(time_skipping: WorkflowEnvironment) -> datetime:
    return await time_skipping.get_current_time()


async def test_a_run_started_inside_a_window_waits_for_its_end_then_runs(
    start, releases, fake_ecs, notified, policy_file, time_skipping
):
    now = await _now(time_skipping)
    end = now + timedelta(seconds=20)
    policy_file(freeze_windows=[{"name": "launch", "start": now.isoformat(), "end": end}])
    releases.release("canary")
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["frozen", "finished"]}
    handle = await start(request(verification={"require_approval": False}, notifications=[hook]))

    frozen = await _until(handle, lambda s: s.frozen_until is not None)
    assert (frozen.frozen_window, frozen.frozen_until) == ("launch", end)
    assert "describe_services" not in fake_ecs.names()  # nothing started yet

    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    (first_look, *_) = fake_ecs.inputs("describe_services")
    assert first_look is not None and _started(result, Stage.VERIFICATION) >= end
    assert (await _status(handle)).frozen_until is None
    frozen, finished = notified
    assert (frozen.event, frozen.status.frozen_window, frozen.status.frozen_until) == (
        "frozen",
        "launch",
        end,
    )
    assert finished.event == "finished"


async def test_a_rollout_that_would_start_inside_a_window_holds_until_it_ends(
    start, releases, fake_ecs, policy_file, time_skipping
):
    now = await _now(time_skipping)
    opens, ends = now + timedelta(seconds=100), now + timedelta(seconds=300)
    policy_file(freeze_windows=[{"name": "weekend", "start": opens, "end": ends}])
    releases.release("canary")
    # The bake (200 s) ends inside the window: approved, but held before the rollout.
    handle = await start(request(verification={"require_approval": False, "bake_seconds": 200}))
    await _until(handle, lambda s: s.bake_ends_at is not None)
    await time_skipping.sleep(250)

    held = await _until(handle, lambda s: s.frozen_until is not None)
    assert (held.frozen_window, held.frozen_until) == ("weekend", ends)
    assert held.decision is not None and held.decision.action == "approve"
    assert held.stage == Stage.VERIFICATION  # the canary keeps serving
    assert "delete_service" not in fake_ecs.names() and "update_service" not in fake_ecs.names()

    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    assert _started(result, Stage.CANARY_DELETE) >= ends
    assert [u.service for u in fake_ecs.inputs("update_service")] == ["myapp"]


async def test_override_freeze_lets_one_run_go_on_and_is_audited(
    start, releases, fake_ecs, policy_file, time_skipping
):
    now = await _now(time_skipping)
    window = {"name": "holidays", "start": now - timedelta(hours=1), "end": now + timedelta(days=7)}
    policy_file(approvers=["alice"], freeze_windows=[window])
    releases.release("canary")
    handle = await start(request(verification={"require_approval": False}))
    await _until(handle, lambda s: s.frozen_until is not None)

    with pytest.raises(WorkflowUpdateFailedError) as stranger:
        await _send(handle, "override_freeze", by="mallory")
    assert "'mallory' may not decide" in str(stranger.value.cause)
    await _send(handle, "override_freeze", reason="hotfix for the outage")

    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    assert _holds(result) == [("override_freeze", "alice", True)]
    (override,) = [a for a in result.attempts if a.action == "override_freeze"]
    assert override.reason == "hotfix for the outage" and override.via == "update"
    assert result.stages[-1].ended_at is not None
    assert result.stages[-1].ended_at < now + timedelta(days=1)  # not at the window's end


async def test_where_decisions_must_be_signed_a_pause_needs_a_token_for_pause(
    start, releases, tmp_path, monkeypatch
):
    alice = Approver("alice-key", owner="alice", issuer=None)
    monkeypatch.setenv(KEYS_ENV, str(write_jwks(tmp_path / "approvers.json", alice)))
    releases.release("canary")
    handle = await start(request(verification={**GATED, "require_signed_decisions": True}))
    await _until(handle, lambda s: s.gate_open)
    run_id = handle.result_run_id or ""

    with pytest.raises(WorkflowUpdateFailedError) as unsigned:
        await _send(handle, "pause")
    assert "a signed decision is required" in str(unsigned.value.cause)
    assert f"python starter.py pause {handle.id} --run-id {run_id} --key FILE" in str(
        unsigned.value.cause
    )
    approving = alice.token(handle.id, "approve", run_id=run_id)
    with pytest.raises(WorkflowUpdateFailedError) as wrong_action:
        await handle.execute_update("pause", {"token": approving})
    assert "the token is for 'approve', not 'pause'" in str(wrong_action.value.cause)

    pausing = alice.token(handle.id, "pause", run_id=run_id)
    paused = await handle.execute_update(
        "pause", {"token": pausing, "reason": "incident"}, result_type=DeploymentStatus
    )
    assert paused.paused is not None and paused.paused.by == "alice"
    (accepted,) = [a for a in paused.attempts if a.accepted]
    assert (accepted.action, accepted.by, accepted.signed) == ("pause", "alice", True)
    await handle.cancel()
    assert isinstance(await failure_of(handle), CancelledError)
