"""The verification gate's rules on their own: who may decide, when, and what is recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecs_canary.gate import Gate, GateRefusal
from ecs_canary.models import DecisionAction, DecisionInput, VerificationSettings

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ACTIONS: tuple[DecisionAction, ...] = ("approve", "reject")


def _gate(phase: str = "open", **settings: object) -> Gate:
    """A gate with these settings, brought to `phase` the way the workflow does."""
    gate = Gate()
    gate.configure(VerificationSettings.model_validate(settings))
    if phase in ("baking", "open", "closed"):
        gate.start_bake(T0)
    if phase in ("open", "closed"):
        gate.open(T0)
    if phase == "closed":
        gate.close()
    return gate


def _by(name: str | None, reason: str | None = None) -> DecisionInput:
    return DecisionInput(by=name, reason=reason)


def _refusal(gate: Gate, action: DecisionAction, by: str | None) -> str:
    with pytest.raises(GateRefusal) as refused:
        gate.check(action, _by(by))
    return str(refused.value)


def test_an_approval_before_the_canary_is_steady_is_refused():
    gate = _gate("waiting_for_canary")
    assert _refusal(gate, "approve", "alice") == (
        "the canary is not steady yet; an approval must follow verification"
    )


def test_a_rejection_is_accepted_before_the_gate_opens():
    for phase in ("waiting_for_canary", "baking"):
        gate = _gate(phase)
        assert gate.offer("reject", _by("alice", "bad metrics"), "signal", T0)
        assert gate.rejected and gate.decision is not None
        assert (gate.decision.by, gate.decision.reason) == ("alice", "bad metrics")


def test_an_approval_during_bake_is_refused():
    gate = _gate("baking", bake_seconds=60)
    assert _refusal(gate, "approve", "alice") == (
        "the canary is still baking; approve once the bake time has passed"
    )


def test_an_approval_while_the_canary_analysis_runs_is_refused_a_rejection_taken():
    gate = _gate("baking")
    gate.await_analysis()

    assert _refusal(gate, "approve", "alice") == (
        "the canary analysis is still running; approve once its last interval has passed"
    )
    assert gate.bake_ends_at is None and not gate.is_open
    assert gate.offer("reject", _by("alice"), "signal", T0) and gate.rejected


def test_an_open_gate_takes_one_approval_by_default():
    gate = _gate("open")
    assert gate.is_open
    assert gate.offer("approve", _by("alice", "looks good"), "update", T0)
    assert gate.decision is not None
    assert (gate.decision.action, gate.decision.by, gate.decision.via) == (
        "approve",
        "alice",
        "update",
    )
    assert gate.decision.approvals == ["alice"]
    assert not gate.is_open and not gate.rejected


def test_a_closed_gate_refuses_everyone():
    gate = _gate("closed")
    for action in ACTIONS:
        assert _refusal(gate, action, "alice") == "the gate is closed: the rolling deploy has begun"


def test_a_decided_gate_refuses_further_attempts_and_says_who_decided():
    gate = _gate("open")
    gate.offer("reject", _by("bob"), "signal", T0)
    assert _refusal(gate, "approve", "alice") == (
        "the gate was already decided: reject by bob (signal)"
    )
    assert _refusal(gate, "reject", "carol").startswith("the gate was already decided")


def test_only_listed_approvers_may_approve_or_reject():
    gate = _gate("open", approvers=["alice", "bob"])
    expected = "'mallory' may not decide this deployment; allowed: alice, bob"
    assert _refusal(gate, "approve", "mallory") == expected
    assert _refusal(gate, "reject", "mallory") == expected
    gate.check("approve", _by("bob"))  # no refusal


def test_an_anonymous_attempt_counts_as_anonymous():
    gate = _gate("open", approvers=["alice"])
    assert _refusal(gate, "approve", None).startswith("'anonymous' may not decide")
    open_gate = _gate("open")
    assert open_gate.offer("approve", _by(None), "signal", T0)
    assert open_gate.decision is not None and open_gate.decision.by == "anonymous"
    assert open_gate.attempts[0].by is None  # the attempt keeps what was sent


def test_min_approvals_needs_distinct_approvers():
    gate = _gate("open", approvers=["alice", "bob", "carol"], min_approvals=2)
    assert gate.offer("approve", _by("alice"), "signal", T0)
    assert gate.decision is None and gate.is_open
    assert gate.approvals == ["alice"]
    assert _refusal(gate, "approve", "alice") == (
        "'alice' has already approved; 2 distinct approvers are needed"
    )
    assert gate.offer("approve", _by("bob"), "update", T0 + timedelta(seconds=5))
    assert gate.decision is not None
    assert (gate.decision.action, gate.decision.by, gate.decision.approvals) == (
        "approve",
        "bob",
        ["alice", "bob"],
    )
    assert gate.decision.at == T0 + timedelta(seconds=5)


def test_a_rejection_after_a_first_approval_still_rejects():
    gate = _gate("open", min_approvals=2)
    gate.offer("approve", _by("alice"), "signal", T0)
    assert gate.offer("reject", _by("bob", "error rate"), "signal", T0)
    assert gate.rejected and gate.decision is not None
    assert gate.decision.approvals == ["alice"]


def test_check_changes_nothing():
    gate = _gate("open", min_approvals=2)
    gate.check("approve", _by("alice"))
    gate.check("reject", _by("alice"))
    with pytest.raises(GateRefusal):
        _gate("closed").check("approve", _by("alice"))
    assert (gate.decision, gate.approvals, gate.attempts) == (None, [], [])
    assert gate.is_open


def test_offer_records_refused_and_accepted_attempts_in_order():
    gate = _gate("baking", approvers=["alice"])
    assert not gate.offer("approve", _by("alice", "early"), "signal", T0)
    assert not gate.offer("reject", _by("mallory"), "update", T0 + timedelta(seconds=1))
    gate.open(T0 + timedelta(seconds=2))
    assert gate.offer("approve", _by("alice"), "signal", T0 + timedelta(seconds=3))

    first, second, third = gate.attempts
    assert (first.action, first.by, first.reason, first.via, first.accepted) == (
        "approve",
        "alice",
        "early",
        "signal",
        False,
    )
    assert first.refusal == "the canary is still baking; approve once the bake time has passed"
    assert (second.accepted, second.via, second.at) == (False, "update", T0 + timedelta(seconds=1))
    assert second.refusal is not None and "may not decide" in second.refusal
    assert (third.accepted, third.refusal) == (True, None)
    assert gate.approvals == ["alice"]


def test_a_refused_offer_changes_no_decision():
    gate = _gate("open", approvers=["alice"])
    assert not gate.offer("approve", _by("mallory"), "signal", T0)
    assert gate.decision is None and gate.approvals == [] and gate.is_open


def test_decide_automatically_records_and_decides_without_asking_the_rules():
    gate = _gate("closed", approvers=["alice"])  # neither a closed gate nor approvers stop it
    gate.decide_automatically("reject", "alarm", "Alarm cpu-high went into ALARM", T0)
    assert gate.rejected and gate.decision is not None
    assert (gate.decision.by, gate.decision.via, gate.decision.reason) == (
        "ecs-canary",
        "alarm",
        "Alarm cpu-high went into ALARM",
    )
    (attempt,) = gate.attempts
    assert (attempt.by, attempt.accepted, attempt.via) == ("ecs-canary", True, "alarm")


def test_decide_automatically_on_timeout_approves_when_configured():
    gate = _gate("open", on_timeout="approve")
    gate.decide_automatically("approve", "timeout", "no decision in time", T0, by="timer")
    assert gate.decision is not None
    assert (gate.decision.action, gate.decision.by) == ("approve", "timer")
    assert not gate.is_open


def test_the_gate_deadline_is_fixed_when_it_opens_and_gone_once_decided():
    gate = _gate("waiting_for_canary", timeout_seconds=600)
    assert gate.deadline is None
    gate.open(T0)
    assert gate.deadline == T0 + timedelta(seconds=600)
    gate.offer("reject", _by("alice"), "signal", T0 + timedelta(seconds=100))
    assert gate.deadline is None  # decided: no longer open


def test_the_bake_end_is_known_only_while_baking():
    gate = _gate("waiting_for_canary", bake_seconds=120)
    assert gate.bake_ends_at is None
    gate.start_bake(T0)
    assert gate.bake_ends_at == T0 + timedelta(seconds=120)
    gate.open(T0 + timedelta(seconds=120))
    assert gate.bake_ends_at is None


def test_closing_an_undecided_gate_ends_its_deadline():
    gate = _gate("open")
    gate.close()
    assert not gate.is_open
    assert gate.deadline is None and gate.bake_ends_at is None
