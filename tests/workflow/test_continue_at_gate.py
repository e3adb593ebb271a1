"""A deployment whose open gate takes a flood of refused signals continues as new at that gate
(workflows.continue_at_gate), on the time-skipping server with fake ECS and the real token
verification: the new run keeps the gate's approvals, attempts, deadline and used token ids,
takes a token signed for the run it continued from, and goes on to roll out, reject or time out
as the first run would have. The threshold is lowered to a few dozen events above the history
at the gate, so that the flood crosses it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from bench.flood import IN_FLIGHT, attempts_shown, send_refused_signals
from ecs_canary.attempt_log import MAX_REFUSED_ATTEMPTS
from ecs_canary.models import DeploymentResult, DeploymentStatus, Outcome
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.policy import SIGNED_DECISIONS_ENV as POLICY_ENV
from ecs_canary.signing import KEYS_ENV
from tests.helpers import refused_continuations, wait_until
from tests.helpers.signing import Approver, write_jwks
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service
from workflows import continue_at_gate

ALICE = Approver("alice-key", owner="alice", issuer=None)
BOB = Approver("bob-key", owner="bob", issuer=None)
FLOOD = 150  # more than the attempts `status` keeps
# Events of history above the gate's (at its opening) after which the run continues as new.
ABOVE_THE_GATE = 40

Handle = WorkflowHandle[Any, DeploymentResult]


@pytest.fixture(autouse=True)
def signing_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker (in this process) trusts Alice's and Bob's keys, and has no policy file."""
    monkeypatch.setenv(KEYS_ENV, str(write_jwks(tmp_path / "approvers.json", ALICE, BOB)))
    monkeypatch.delenv(POLICY_ENV, raising=False)
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)


# The run continues at the first QUIET_SECONDS (0.2 s) without a signal. A flood sent from a
# machine busy with the rest of the suite can pause that long between two signals: in a CI run
# the continuation met a signal on its way, the time-skipping server refused the completion
# ("invalid history builder state for action") and the run never continued. These tests are
# about the run waiting for the flood's end, so here the pause it waits for is longer than the
# machine's stalls.
QUIET_IN_TESTS_SECONDS = 2.0


@pytest.fixture(autouse=True)
def quiet_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(continue_at_gate, "QUIET_SECONDS", QUIET_IN_TESTS_SECONDS)


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    return fake_ecs


# Start a deployment and flood its gate past the threshold: its handle, its first run's id
# and the continued run's status (`_flood_past_the_threshold`).
Flood = Callable[..., Awaitable[tuple[Handle, str, DeploymentStatus]]]


@pytest.fixture
def flood(start, monkeypatch: pytest.MonkeyPatch, time_skipping: WorkflowEnvironment) -> Flood:
    async def flood_(
        body: dict[str, Any], first: tuple[str, dict[str, Any]] | None = None
    ) -> tuple[Handle, str, DeploymentStatus]:
        handle = await start(body)
        first_run, flooded = await _flood_past_the_threshold(
            handle, monkeypatch, time_skipping.client, first
        )
        return handle, first_run, flooded

    return flood_


def _signed_gate(**verification: Any) -> dict[str, Any]:
    return request(
        verification={"require_signed_decisions": True, "min_approvals": 2, **verification}
    )


async def _status(handle: Handle) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def _flood_past_the_threshold(
    handle: Handle,
    monkeypatch: pytest.MonkeyPatch,
    client: Client,
    first: tuple[str, dict[str, Any]] | None = None,
) -> tuple[str, DeploymentStatus]:
    """Open the gate, send the Update `first` (by default Alice's approval, one of two), flood
    the gate until the run continues as new; returns the first run's id and the continued
    run's status once every signal is counted."""
    first_run = handle.result_run_id or ""
    opened = await wait_until(lambda: _open(handle))
    at_the_gate = (await handle.describe()).history_length
    monkeypatch.setattr(
        continue_at_gate, "CONTINUE_AT_GATE_AFTER_EVENTS", at_the_gate + ABOVE_THE_GATE
    )
    name, payload = first or ("approve", {"token": _alices(handle, first_run)})
    await handle.execute_update(name, payload)
    await send_refused_signals(handle, FLOOD)

    async def continued() -> DeploymentStatus | None:
        if (await handle.describe()).run_id == first_run:
            return None
        current = await _status(handle)
        return current if attempts_shown(current) >= FLOOD + 1 else None

    flooded = await wait_until(continued)
    assert flooded.gate_deadline == opened.gate_deadline
    # It continued once the signals paused, never in the middle of them.
    assert await refused_continuations(client, handle.id, first_run) == 0
    return first_run, flooded


def _alices(handle: Handle, run_id: str) -> str:
    """Alice's approval, with the token id `alice-1`."""
    return ALICE.token(handle.id, run_id=run_id, jti="alice-1")


async def _open(handle: Handle) -> DeploymentStatus | None:
    current = await _status(handle)
    return current if current.gate_open else None


async def test_a_flooded_gate_continues_as_new_and_keeps_its_approvals_and_attempts(
    flood: Flood, existing: FakeEcs
) -> None:
    handle, first_run, flooded = await flood(_signed_gate())

    assert flooded.stage == "verification" and flooded.gate_open
    assert flooded.approvals == ["alice"]
    assert len(flooded.attempts) == MAX_REFUSED_ATTEMPTS + 1  # and Alice's approval
    assert flooded.refused_attempts_dropped == FLOOD - MAX_REFUSED_ATTEMPTS
    assert [a.by for a in flooded.attempts if a.accepted] == ["alice"]
    refused = [a for a in flooded.attempts if not a.accepted]
    assert all(a.by and a.by.startswith("p") and a.refusal for a in refused)
    # Alice's token again: its jti was used on the first run, which is this deployment.
    with pytest.raises(WorkflowUpdateFailedError) as used_again:
        await handle.execute_update("approve", {"token": _alices(handle, first_run)})
    assert "'alice-1' (jti) was already used" in str(used_again.value.cause)
    # Bob signed for the run he saw, the first: the same deployment, so it decides.
    await handle.execute_update("approve", {"token": BOB.token(handle.id, run_id=first_run)})

    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    assert result.decision is not None and result.decision.approvals == ["alice", "bob"]
    assert [a.by for a in result.attempts if a.accepted] == ["alice", "bob"]
    assert [name for name in existing.names() if name == "update_service"] == ["update_service"]
    assert [s.stage for s in result.stages][:2] == ["canary_deploy", "verification"]


async def test_a_continued_gate_that_times_out_rejects_at_its_first_deadline(
    flood: Flood, existing: FakeEcs
) -> None:
    handle, _, flooded = await flood(_signed_gate(timeout_seconds=3600))

    result = await handle.result()  # the time-skipping server jumps to the gate's deadline
    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None and result.decision.via == "timeout"
    assert flooded.gate_deadline is not None  # the first run's, to the timer's resolution:
    assert abs(result.decision.at - flooded.gate_deadline) < timedelta(seconds=1)
    assert result.canary_deleted
    assert "update_service" not in existing.names()


async def test_a_token_for_another_deployment_of_the_service_is_refused_after_continuing(
    flood: Flood, existing: FakeEcs
) -> None:
    handle, _, _ = await flood(_signed_gate())

    stale = BOB.token(handle.id, run_id="an-earlier-deployment")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("approve", {"token": stale})
    current_run = (await handle.describe()).run_id
    assert f"the token is for run an-earlier-deployment, not {current_run}" in str(
        refused.value.cause
    )
    bobs = BOB.token(handle.id, action="reject", run_id=current_run)
    await handle.execute_update("reject", {"token": bobs})

    result = await handle.result()
    assert result.outcome == Outcome.REJECTED and result.canary_deleted


async def test_a_paused_gate_continues_as_new_paused_and_its_timer_resumes_after(
    flood: Flood, existing: FakeEcs
) -> None:
    pause = ("pause", {"by": "alice", "reason": "incident"})
    handle, _, paused = await flood(request(verification={"timeout_seconds": 3600}), pause)
    assert paused.paused is not None and paused.paused.by == "alice"
    resumed = await handle.execute_update("resume", {"by": "alice"}, result_type=DeploymentStatus)
    assert resumed.paused is None and resumed.gate_deadline is not None
    assert paused.gate_deadline is not None and resumed.gate_deadline > paused.gate_deadline

    result = await handle.result()  # the time-skipping server jumps to the moved deadline
    assert result.decision is not None and result.decision.via == "timeout"
    assert abs(result.decision.at - resumed.gate_deadline) < timedelta(seconds=1)


async def test_a_flood_of_signals_no_deployment_takes_also_waits_for_a_pause(
    start, existing: FakeEcs, monkeypatch: pytest.MonkeyPatch, time_skipping: WorkflowEnvironment
) -> None:
    """Signals of a name the run has no handler for count as signals for the quiet moment: the
    run continues as new after them, not in the middle of them."""
    handle = await start(request())
    first_run = handle.result_run_id or ""
    await wait_until(lambda: _open(handle))
    at_the_gate = (await handle.describe()).history_length
    monkeypatch.setattr(
        continue_at_gate, "CONTINUE_AT_GATE_AFTER_EVENTS", at_the_gate + ABOVE_THE_GATE
    )
    sending = asyncio.Semaphore(IN_FLIGHT)

    async def one(number: int) -> None:
        async with sending:
            await handle.signal("no-such-signal", number)

    await asyncio.gather(*(one(number) for number in range(FLOOD)))

    async def continued() -> bool:
        return (await handle.describe()).run_id != first_run

    await wait_until(continued)
    assert await refused_continuations(time_skipping.client, handle.id, first_run) == 0
    # The continued run still takes its gate's decision (and ends, which frees the shared
    # time-skipping server for the next test).
    await handle.execute_update("reject", {"by": "alice", "reason": "flooded"})
    result = await handle.result()
    assert result.outcome == Outcome.REJECTED and result.canary_deleted
