"""Signed decisions without a server: the gate's rules for unsigned and signed attempts, the
decision payload and the run's start checks, and the starter's keys and tokens."""

from __future__ import annotations

import argparse
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from pydantic import ValidationError

from cli import approver_keys
from cli import signing as starter_signing
from cli.errors import CliError
from cli.format import attempt_text, decision_commands, decision_text, status_lines
from cli.runs import RunOf
from ecs_canary.attempt_log import MAX_REFUSED_ATTEMPTS
from ecs_canary.gate import Gate, GateRefusal, UpdateRefusal
from ecs_canary.models import DecisionInput, StartChecks, VerificationSettings
from ecs_canary.notification_messages import RunLinks
from ecs_canary.notification_messages import decision_commands as notification_commands
from ecs_canary.policy import PlatformPolicy
from ecs_canary.signing import (
    DecisionClaims,
    TokenRefusal,
    jwks,
    trusted_keys,
    verify_decision_token,
)
from tests.helpers.statuses import deployment_status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
WID = "ecs-canary/prod/myapp"


def _open_gate(worker_policy: bool | None = False, **settings: object) -> Gate:
    gate = Gate()
    gate.configure(VerificationSettings.model_validate(settings))
    if worker_policy is not None:
        gate.learn_policy(PlatformPolicy(require_signed_decisions=worker_policy))
    gate.open(T0)
    return gate


def _refusal(gate: Gate, decision: DecisionInput, signed: bool = False) -> str:
    with pytest.raises(GateRefusal) as refused:
        gate.check("approve", decision, signed=signed)
    return str(refused.value)


def test_unsigned_decisions_are_refused_when_the_request_requires_signatures():
    gate = _open_gate(require_signed_decisions=True)
    assert gate.signatures_required is True
    assert _refusal(gate, DecisionInput(by="alice")).startswith(
        "a signed decision is required by this deployment's request "
        "(verification.require_signed_decisions)"
    )
    assert not gate.offer("reject", DecisionInput(by="alice"), "signal", T0)
    assert gate.offer("approve", DecisionInput(by="alice"), "update", T0, signed=True)
    assert gate.decision is not None and gate.decision.signed
    assert [(a.accepted, a.signed) for a in gate.attempts] == [(False, False), (True, True)]


def test_the_worker_policy_requires_signatures_whatever_the_request_says():
    gate = _open_gate(worker_policy=True, require_signed_decisions=False)
    assert (
        "the platform policy (require_signed_decisions: ECS_CANARY_POLICY_FILE or "
        "ECS_CANARY_REQUIRE_SIGNED_DECISIONS)"
    ) in _refusal(gate, DecisionInput(by="alice"))


def test_a_policy_learned_while_the_gate_is_open_applies_to_the_next_decision():
    gate = _open_gate(min_approvals=1)
    gate.learn_policy(PlatformPolicy(approvers=["alice", "bob"], min_approvals=2))
    assert "may not decide: the platform policy (ECS_CANARY_POLICY_FILE: approvers)" in (
        _refusal(gate, DecisionInput(by="mallory"))
    )
    assert gate.offer("approve", DecisionInput(by="alice"), "signal", T0)
    assert gate.decision is None and gate.min_approvals == 2
    assert gate.offer("approve", DecisionInput(by="bob"), "signal", T0)
    assert gate.approved


def test_refused_attempts_beyond_the_last_hundred_are_counted_not_kept():
    gate = _open_gate()
    assert gate.offer("approve", DecisionInput(by="alice"), "signal", T0)
    for number in range(MAX_REFUSED_ATTEMPTS + 5):
        gate.refuse("reject", DecisionInput(by=f"p{number}"), "signal", T0, "no")
    assert len(gate.attempts) == MAX_REFUSED_ATTEMPTS + 1 and gate.refused_attempts_dropped == 5
    assert gate.attempts[0].accepted and gate.attempts[1].by == "p5"


def test_an_open_gate_carried_to_a_continued_run_is_the_same_gate():
    """What a run that continues as new at its gate carries (workflows.continue_at_gate): the
    reopened gate answers and decides as the first one would."""
    gate = _open_gate(min_approvals=2, approvers=["alice", "bob"])
    gate.learn_policy(PlatformPolicy(min_approvals=2))
    assert gate.offer("approve", DecisionInput(by="alice"), "update", T0, signed=True)
    for number in range(MAX_REFUSED_ATTEMPTS + 5):
        gate.refuse("approve", DecisionInput(by=f"p{number}"), "signal", T0, "no")
    carried = gate.carried()

    reopened = Gate()
    reopened.configure(VerificationSettings(min_approvals=2, approvers=["alice", "bob"]))
    reopened.reopen(type(carried).model_validate_json(carried.model_dump_json()))
    assert reopened.is_open and reopened.deadline == gate.deadline
    assert (reopened.approvals, reopened.opened_at) == (["alice"], T0)
    assert reopened.attempts == gate.attempts
    assert reopened.refused_attempts_dropped == gate.refused_attempts_dropped == 5
    assert reopened.policy == gate.policy
    assert "'alice' has already approved" in _refusal(reopened, DecisionInput(by="alice"))
    assert reopened.offer("approve", DecisionInput(by="bob"), "signal", T0)
    assert reopened.approved and reopened.decision is not None
    assert reopened.decision.approvals == ["alice", "bob"]


def test_before_the_worker_answers_the_policy_is_unknown_unless_the_request_decides():
    assert _open_gate(worker_policy=None).signatures_required is None
    assert _open_gate(worker_policy=None, require_signed_decisions=True).signatures_required
    assert _open_gate(worker_policy=False).signatures_required is False


def test_approvers_are_compared_with_the_verified_subject():
    gate = _open_gate(approvers=["alice", "bob"])
    assert "'mallory' may not decide" in _refusal(gate, DecisionInput(by="mallory"), signed=True)
    gate.check_before_verification("approve")  # who it is is not known yet: no approver check
    assert gate.offer("approve", DecisionInput(by="bob"), "signal", T0, signed=True)


def test_the_checks_before_verification_still_refuse_a_decided_gate():
    gate = _open_gate()
    gate.offer("reject", DecisionInput(by="alice"), "signal", T0)
    with pytest.raises(GateRefusal, match="already decided"):
        gate.check_before_verification("approve")


def test_an_update_refusal_is_an_application_error_that_reads_like_the_gate():
    refusal = UpdateRefusal("the token expired at 12:00")
    assert str(refusal) == refusal.message == "the token expired at 12:00"
    assert refusal.type == "GateRefusal" and refusal.non_retryable
    assert isinstance(refusal, GateRefusal)


def test_a_decision_payload_may_carry_a_token_but_not_an_empty_or_huge_one():
    assert DecisionInput.model_validate({"token": "a.b.c", "reason": "ok"}).token == "a.b.c"
    for token in ("", "x" * 20_000, 5):
        with pytest.raises(ValidationError):
            DecisionInput.model_validate({"token": token})


def test_start_checks_read_the_bare_list_recorded_before_signing_existed():
    legacy = StartChecks.model_validate(["EcsCluster"])
    assert legacy == StartChecks(missing_search_attributes=["EcsCluster"])
    assert not legacy.signed_decisions_required


def test_signed_decisions_show_in_the_starter_wording():
    gate = _open_gate()
    gate.offer("approve", DecisionInput(by="alice", reason="flat"), "update", T0, signed=True)
    assert gate.decision is not None
    assert decision_text(gate.decision) == "approve by alice (update, signed): flat"
    assert attempt_text(gate.attempts[0]) == "approve by alice (signed) via update, accepted"
    cli, starter = decision_commands(WID, "approve", signed=True)
    assert cli == (
        f"temporal workflow update execute --workflow-id {WID} --name approve "
        """--input '{"token":"YOUR_TOKEN"}'"""
    )
    assert starter == f"python starter.py approve {WID} --key YOUR_KEY.pem"
    notified, _ = notification_commands(RunLinks("default", WID, "r1", "-"), "reject", signed=True)
    assert notified.endswith('--name reject --input "{\\"token\\":\\"$ECS_CANARY_ID_TOKEN\\"}"')


def test_keygen_writes_a_private_key_only_its_owner_reads_and_prints_the_jwk(
    tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    assert approver_keys.keygen(argparse.Namespace(name="alice")) == 0
    key_file = tmp_path / "alice.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwk = json.loads(capsys.readouterr().out)
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
    assert jwk["sub"] == "alice"  # the key is alice's: it verifies only her tokens
    assert jwk["kid"] == approver_keys.thumbprint(jwk) and "d" not in jwk
    with pytest.raises(CliError, match="exists"):
        approver_keys.keygen(argparse.Namespace(name="alice.pem"))

    # What `approve --key alice.pem` signs, the worker verifies with the printed JWK.
    (tmp_path / "jwks.json").write_text(jwks(jwk))
    key = approver_keys.load_private_key(str(key_file))
    run = RunOf(WID, "run-1")
    token = approver_keys.sign_decision(key, "alice", run, "approve")
    keys = trusted_keys(str(tmp_path / "jwks.json"))
    verified = verify_decision_token(token, keys, DecisionClaims(WID, "run-1", "approve"))
    assert verified.subject == "alice" and verified.jti
    # Signed as somebody else with alice's key: refused, whoever the token names.
    as_bob = approver_keys.sign_decision(key, "bob", run, "approve")
    with pytest.raises(TokenRefusal, match="signed by 'alice''s key"):
        verify_decision_token(as_bob, keys, DecisionClaims(WID, "run-1", "approve"))


def _decide_args(**values: object) -> argparse.Namespace:
    defaults = {"command": "approve", "workflow_id": WID, "by": None, "reason": None}
    return argparse.Namespace(**{**defaults, "key": None, "token": None, **values})


def test_the_starter_sends_a_name_a_signed_token_or_an_idp_token(
    tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("USER", "carol")
    monkeypatch.delenv("ECS_CANARY_ID_TOKEN", raising=False)
    run = RunOf(WID, "run-1")
    assert starter_signing.decision_input(_decide_args())(run) == DecisionInput(by="carol")
    approver_keys.keygen(argparse.Namespace(name="dave"))
    signed = starter_signing.decision_input(_decide_args(key="dave.pem", reason="ok"))(run)
    assert signed.by is None and signed.reason == "ok" and signed.token
    claims = jwt.decode(signed.token, options={"verify_signature": False})
    # Signed as the key's owner (keygen's NAME), for this run, with a fresh id.
    assert (claims["sub"], claims["run_id"], len(claims["jti"])) == ("dave", "run-1", 32)
    assert starter_signing.decision_input(_decide_args(token=" t.o.k "))(run).token == "t.o.k"
    monkeypatch.setenv("ECS_CANARY_ID_TOKEN", "from.the.idp")
    assert starter_signing.decision_input(_decide_args())(run).token == "from.the.idp"
    with pytest.raises(CliError, match="--by cannot go with a token"):
        starter_signing.decision_input(_decide_args(by="carol"))(run)
    (tmp_path / "notakey.pem").write_text("hello")
    with pytest.raises(CliError, match="not an unencrypted PEM private key"):
        starter_signing.decision_input(_decide_args(key="notakey.pem"))(run)


def test_status_counts_the_refused_attempts_it_no_longer_keeps():
    gate = _open_gate()
    for number in range(MAX_REFUSED_ATTEMPTS + 3):
        gate.refuse("approve", DecisionInput(by=f"p{number}"), "signal", T0, "invalid decision")
    shown = deployment_status(
        attempts=[a.model_dump() for a in gate.attempts],
        refused_attempts_dropped=gate.refused_attempts_dropped,
    )
    lines = status_lines(WID, shown, None)
    assert f"attempts:  {MAX_REFUSED_ATTEMPTS + 3}" in lines
    assert "  (3 earlier refused attempts not kept)" in lines
