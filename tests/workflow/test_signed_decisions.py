"""Signed decisions on the time-skipping server: the real verification activity with a JWKS
file, fake ECS. Who decides is the token's `sub`; unsigned decisions are refused when the
request or the worker's policy requires signatures; a refused token is recorded; decisions
keep their order while one is verified; and a replay after the keys rotate keeps the decision."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.decisions import verify_decision
from ecs_canary.models import DeploymentResult, DeploymentStatus, Outcome
from ecs_canary.names import WORKFLOW_TYPE
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.policy import SIGNED_DECISIONS_ENV as POLICY_ENV
from ecs_canary.signing import KEYS_ENV
from tests.helpers import replayer, wait_until
from tests.helpers.signing import Approver, write_jwks
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service
from workflows.canary import EcsCanaryDeployment

# People's keys, as `starter.py keygen NAME` makes them: each JWK names its owner.
ALICE_KEY = Approver("alice-key", owner="alice", issuer=None)
BOB_KEY = Approver("bob-key", owner="bob", issuer=None)


def _token(
    key: Approver,
    handle: WorkflowHandle[Any, DeploymentResult],
    action: str = "approve",
    **claims: Any,
) -> str:
    """A token for this run of the workflow."""
    return key.token(handle.id, action, run_id=handle.result_run_id or "", **claims)


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    return fake_ecs


@pytest.fixture
def jwks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker trusts ALICE_KEY (the worker runs in this process: it reads this env)."""
    path = write_jwks(tmp_path / "approvers.json", ALICE_KEY, BOB_KEY)
    monkeypatch.setenv(KEYS_ENV, str(path))
    monkeypatch.delenv(POLICY_ENV, raising=False)
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    return path


async def _status(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def _gate_open(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentStatus:
    async def opened() -> DeploymentStatus | None:
        current = await _status(handle)
        return current if current.gate_open else None

    return await wait_until(opened)


async def _refused(handle: WorkflowHandle[Any, DeploymentResult], name: str, payload: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(name, payload)
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "GateRefusal"
    return refused.value.cause.message


def _audit(result: DeploymentResult | DeploymentStatus) -> list[tuple[Any, ...]]:
    return [(a.action, a.by, a.via, a.accepted, a.signed) for a in result.attempts]


async def test_a_signed_approval_decides_as_the_tokens_subject(existing, jwks_file, start):
    handle = await start(request())
    await _gate_open(handle)
    token = _token(ALICE_KEY, handle)
    status = await handle.execute_update(
        "approve", {"by": "mallory", "token": token, "reason": "flat"}, result_type=DeploymentStatus
    )
    assert status.decision is not None
    assert (status.decision.by, status.decision.signed) == ("alice", True)
    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    assert _audit(result) == [("approve", "alice", "update", True, True)]


async def test_unsigned_decisions_are_refused_when_the_request_requires_signatures(
    existing, jwks_file, start
):
    handle = await start(request(verification={"require_signed_decisions": True}))
    gate = await _gate_open(handle)
    assert gate.signed_decisions_required is True
    refusal = await _refused(handle, "approve", {"by": "alice"})
    assert "a signed decision is required by this deployment's request" in refusal
    # The command it suggests signs for this run.
    suggested = f"python starter.py approve|reject {handle.id} --run-id {handle.result_run_id} "
    assert suggested in refusal
    await handle.signal("approve", {"by": "alice"})
    await handle.signal("reject", {"token": _token(BOB_KEY, handle, "reject")})
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None and (result.decision.by, result.decision.signed) == (
        "bob",
        True,
    )
    # The refused Update never reached the history; the refused signal is recorded.
    assert _audit(result) == [
        ("approve", "alice", "signal", False, False),
        ("reject", "bob", "signal", True, True),
    ]
    assert "signed decision is required" in (result.attempts[0].refusal or "")


async def test_the_worker_policy_requires_signatures_even_if_the_request_does_not(
    existing, jwks_file, start, monkeypatch
):
    monkeypatch.setenv(POLICY_ENV, "true")
    handle = await start(request(verification={"require_signed_decisions": False}))
    gate = await _gate_open(handle)
    assert gate.signed_decisions_required is True
    refusal = await _refused(handle, "approve", {"by": "alice"})
    assert "required by the platform policy (require_signed_decisions" in refusal
    token = _token(ALICE_KEY, handle)
    await handle.execute_update("approve", {"token": token})
    assert (await handle.result()).outcome == Outcome.SUCCEEDED


async def test_refused_tokens_are_recorded_with_the_reason(existing, jwks_file, start, tmp_path):
    handle = await start(request())
    await _gate_open(handle)
    other_run = ALICE_KEY.token("ecs-canary/ecs-canary/other", run_id=handle.result_run_id)
    await handle.signal("approve", {"token": other_run})
    forged = _token(Approver("alice-key", owner="alice"), handle)
    refusal = await _refused(handle, "approve", {"token": forged})
    assert refusal == "the token's signature does not match the trusted key 'alice-key'"
    assert await _refused(handle, "approve", {"token": "no-jwt"}) == (
        "the token is not a JWT: Not enough segments"
    )

    status = await _status(handle)
    assert status.decision is None and status.gate_open
    # The signal and the Update refused after verification are both recorded, with nobody
    # as who decided (a refused token proves nothing); the Update its validator refused (not
    # even a JWT) is not.
    assert _audit(status) == [
        ("approve", None, "signal", False, False),
        ("approve", None, "update", False, False),
    ]
    assert status.attempts[0].refusal == (
        f"the token is for workflow 'ecs-canary/ecs-canary/other', not {handle.id!r}"
    )
    await handle.signal("reject", {"by": "alice"})
    assert (await handle.result()).outcome == Outcome.REJECTED


async def test_malformed_decisions_are_refused_with_what_is_wrong(existing, start):
    handle = await start(request())
    await _gate_open(handle)
    assert await _refused(handle, "approve", {"token": ""}) == (
        "invalid decision: token: String should have at least 1 character"
    )
    assert await _refused(handle, "approve", ["alice"]) == (
        "invalid decision: decision: Input should be a valid dictionary or instance of "
        "DecisionInput"
    )
    await handle.signal("approve", {"by": "alice", "when": "now"})
    await handle.signal("reject", {"by": "alice"})
    result = await handle.result()
    assert result.outcome == Outcome.REJECTED
    assert _audit(result) == [
        ("approve", "alice", "signal", False, False),
        ("reject", "alice", "signal", True, False),
    ]
    assert result.attempts[0].refusal == "invalid decision: when: Extra inputs are not permitted"


async def test_decisions_keep_their_order_while_a_token_is_verified(
    existing, jwks_file, time_skipping: WorkflowEnvironment
):
    """Both signals reach the run in one workflow task: the unsigned rejection that came
    second waits for the signed approval's verification, and finds the gate decided."""
    client, queue = time_skipping.client, f"signed-order-{uuid.uuid4().hex[:8]}"

    def worker(**options: Any) -> Worker:
        activities = [*existing.activities(), verify_decision]
        workflows = [EcsCanaryDeployment]
        return Worker(
            client, task_queue=queue, workflows=workflows, activities=activities, **options
        )

    async with worker(max_cached_workflows=0):  # no sticky queue: the next task goes anywhere
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            request(),
            id=f"ecs-canary/ecs-canary/myapp-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
            result_type=DeploymentResult,
        )
        await _gate_open(handle)
    await handle.signal("approve", {"token": _token(ALICE_KEY, handle)})
    await handle.signal("reject", {"by": "bob"})
    async with worker():
        result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    assert _audit(result) == [
        ("approve", "alice", "signal", True, True),
        ("reject", "bob", "signal", False, False),
    ]
    assert "already decided: approve by alice" in (result.attempts[1].refusal or "")


async def test_a_rejection_sent_with_the_start_is_taken_before_any_ecs_change(existing, start):
    handle = await start(request(), start_signal="reject", start_signal_args=[{"by": "alice"}])
    result = await handle.result()
    assert result.outcome == Outcome.REJECTED
    assert "register_task_definition" not in existing.names()


async def test_the_worker_policy_refuses_an_unsigned_decision_sent_with_the_start(
    existing, jwks_file, start, monkeypatch
):
    monkeypatch.setenv(POLICY_ENV, "1")
    handle = await start(request(), start_signal="reject", start_signal_args=[{"by": "alice"}])
    gate = await _gate_open(handle)
    assert [(a.by, a.accepted) for a in gate.attempts] == [("alice", False)]
    await handle.signal("reject", {"token": _token(ALICE_KEY, handle, "reject")})
    assert (await handle.result()).outcome == Outcome.REJECTED


async def test_a_replay_after_the_keys_rotate_keeps_the_recorded_decision(
    existing, jwks_file, start
):
    handle = await start(request())
    await _gate_open(handle)
    await handle.signal("approve", {"token": _token(ALICE_KEY, handle)})
    assert (await handle.result()).outcome == Outcome.SUCCEEDED
    history = await handle.fetch_history()

    # Alice's key is rotated out: a token signed with it proves nothing any more...
    write_jwks(jwks_file, Approver("alice-key-2026", owner="alice"))
    replayed = await replayer().replay_workflow(history)
    # ... yet the run replays deterministically: the verdict is in its history.
    assert replayed.replay_failure is None
    result = await handle.result()
    assert result.decision is not None and (result.decision.by, result.decision.signed) == (
        "alice",
        True,
    )


async def test_a_token_is_accepted_once_and_only_from_its_keys_owner(existing, jwks_file, start):
    handle = await start(request(verification={"min_approvals": 2}))
    await _gate_open(handle)
    once = _token(ALICE_KEY, handle, jti="alice-1")
    await handle.execute_update("approve", {"token": once})
    assert await _refused(handle, "approve", {"token": once}) == (
        "the token 'alice-1' (jti) was already used on this run"
    )
    # Bob's key signing as Alice: refused, and the audit does not name Alice.
    as_alice = _token(BOB_KEY, handle, sub="alice")
    assert await _refused(handle, "approve", {"token": as_alice}) == (
        "the token is signed by 'bob''s key 'bob-key' but names 'alice' as who decides"
    )
    await handle.execute_update("approve", {"token": _token(BOB_KEY, handle)})
    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    assert result.decision is not None and result.decision.approvals == ["alice", "bob"]
    assert _audit(result) == [
        ("approve", "alice", "update", True, True),
        ("approve", None, "update", False, False),
        ("approve", None, "update", False, False),
        ("approve", "bob", "update", True, True),
    ]


async def test_a_policy_below_the_request_refuses_the_run_before_any_ecs_call(
    existing, start, tmp_path, monkeypatch
):
    policy = tmp_path / "policy.json"
    policy.write_text('{"min_approvals": 2, "allow_timeout_approve": false}')
    monkeypatch.setenv(POLICY_FILE_ENV, str(policy))
    handle = await start(request(verification={"on_timeout": "approve", "min_approvals": 2}))
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Refused"
    assert "allow_timeout_approve is false" in cause.message
    assert existing.names() == []


async def test_a_policy_tightened_while_the_gate_is_open_applies_to_the_next_decision(
    existing, jwks_file, start, tmp_path, monkeypatch
):
    policy = tmp_path / "policy.json"
    policy.write_text("{}")
    monkeypatch.setenv(POLICY_FILE_ENV, str(policy))
    handle = await start(request())
    gate = await _gate_open(handle)
    assert gate.signed_decisions_required is False
    policy.write_text('{"require_signed_decisions": true, "min_approvals": 2}')
    await handle.signal("approve", {"by": "alice"})
    await handle.execute_update("approve", {"token": _token(ALICE_KEY, handle)})
    status = await _status(handle)
    assert status.decision is None and status.min_approvals == 2
    await handle.execute_update("approve", {"token": _token(BOB_KEY, handle)})
    result = await handle.result()
    assert result.outcome == Outcome.SUCCEEDED
    assert "required by the platform policy" in (result.attempts[0].refusal or "")
    assert _audit(result)[1:] == [
        ("approve", "alice", "update", True, True),
        ("approve", "bob", "update", True, True),
    ]


async def _baking(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentStatus | None:
    current = await _status(handle)
    return current if current.bake_ends_at is not None else None


async def test_a_policy_tightened_during_the_bake_asks_a_person_to_decide(
    existing, start, tmp_path, monkeypatch
):
    policy = tmp_path / "policy.json"
    policy.write_text("{}")
    monkeypatch.setenv(POLICY_FILE_ENV, str(policy))
    handle = await start(request(verification={"require_approval": False, "bake_seconds": 600}))
    await wait_until(lambda: _baking(handle))
    policy.write_text('{"require_approval": true}')
    result = await handle.result()  # the server skips the bake, then the gate's hour

    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None and result.decision.via == "timeout"


async def test_a_policy_tightened_while_the_gate_is_open_forbids_a_timeout_approval(
    existing, start, tmp_path, monkeypatch
):
    policy = tmp_path / "policy.json"
    policy.write_text("{}")
    monkeypatch.setenv(POLICY_FILE_ENV, str(policy))
    handle = await start(request(verification={"on_timeout": "approve", "timeout_seconds": 600}))
    await _gate_open(handle)
    policy.write_text('{"allow_timeout_approve": false}')
    result = await handle.result()

    assert result.outcome == Outcome.REJECTED
    assert result.decision is not None
    assert (result.decision.action, result.decision.via) == ("reject", "timeout")
    assert 'does not allow on_timeout "approve" (allow_timeout_approve is false)' in (
        result.decision.reason or ""
    )


async def test_keys_that_cannot_be_read_refuse_the_token_and_the_run_goes_on(
    existing, jwks_file, start
):
    """The check is a local activity: once its tries are spent, its error (which the SDK hands
    over unwrapped, not as an ActivityError) is a refused decision, never the run's end."""
    handle = await start(request())
    await _gate_open(handle)
    jwks_file.unlink()  # the worker reads its trusted keys at each check
    refusal = await _refused(handle, "approve", {"token": _token(ALICE_KEY, handle, "approve")})
    assert "the token could not be verified" in refusal, refusal

    await handle.signal("reject", {"by": "alice", "reason": "keys are back later"})
    result = await handle.result()
    assert result.outcome == "rejected" and result.canary_deleted
