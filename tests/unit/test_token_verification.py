"""A decision's token on its own: what the worker accepts (Ed25519, ES256, RS256 keys from a
JWKS file or URL), each way a token is refused and in which words, and the verification
activity's verdicts (run on Temporal's ActivityEnvironment, no server)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.decisions import verify_decision
from ecs_canary.models import VerifyDecisionInput
from ecs_canary.policy import PlatformPolicy, signatures_required_by_env
from ecs_canary.signing import (
    ISSUER_ENV,
    KEYS_ENV,
    DecisionClaims,
    KeysUnavailable,
    TokenRefusal,
    TrustedKeys,
    VerifiedToken,
    token_shape_refusal,
    trusted_keys,
    verify_decision_token,
)
from tests.helpers.local_http import QuietHandler, serving
from tests.helpers.signing import ISSUER, RUN_ID, Approver, write_jwks

WID = "ecs-canary/prod/myapp"
ED, EC, RSA = Approver("ed-1", "EdDSA"), Approver("ec-1", "ES256"), Approver("rsa-1", "RS256")
# Not in the trusted JWKS.
STRANGER = Approver("stranger", "EdDSA")


@pytest.fixture
def jwks_path(tmp_path: Path) -> Path:
    return write_jwks(tmp_path / "approvers.json", ED, EC, RSA)


def _subject(token: str, keys: TrustedKeys, action: str = "approve") -> str:
    """Who the token proves decides `action` on run RUN_ID of WID (IdP keys: from ISSUER)."""
    return verify_decision_token(token, keys, DecisionClaims(WID, RUN_ID, action), ISSUER).subject


def _refusal(
    token: str, jwks_path: Path, action: str = "approve", issuer: str | None = ISSUER
) -> str:
    with pytest.raises(TokenRefusal) as refused:
        claims = DecisionClaims(WID, RUN_ID, action)
        verify_decision_token(token, trusted_keys(str(jwks_path)), claims, issuer)
    return str(refused.value)


@pytest.mark.parametrize("approver", [ED, EC, RSA], ids=lambda a: a.alg)
def test_a_token_of_each_algorithm_names_who_decides(approver: Approver, jwks_path: Path):
    for action in ("approve", "reject"):
        token = approver.token(WID, action, sub="alice@example.com")
        assert _subject(token, trusted_keys(str(jwks_path)), action) == "alice@example.com"


def test_a_bad_signature_is_refused(jwks_path: Path):
    forged = Approver("ed-1", "EdDSA").token(WID)  # a trusted kid, another key
    refusal = _refusal(forged, jwks_path)
    assert refusal == "the token's signature does not match the trusted key 'ed-1'"


def test_an_unknown_kid_is_refused(jwks_path: Path):
    assert _refusal(STRANGER.token(WID), jwks_path) == (
        f"no trusted key has kid 'stranger' (keys from {jwks_path})"
    )


def test_an_expired_token_is_refused(jwks_path: Path):
    expired = ED.token(WID, iat=int(time.time()) - 600, exp=int(time.time()) - 120)
    assert _refusal(expired, jwks_path).startswith("the token expired at ")


def test_a_token_for_another_workflow_is_refused(jwks_path: Path):
    other = ED.token("ecs-canary/prod/other")
    assert _refusal(other, jwks_path) == (
        f"the token is for workflow 'ecs-canary/prod/other', not '{WID}'"
    )


def test_a_token_for_another_run_of_the_same_workflow_is_refused(jwks_path: Path):
    """The workflow id is the same for every deployment of a service: a token copied from an
    earlier run's history approves nothing on a later one."""
    earlier = ED.token(WID, run_id="an-earlier-run")
    assert _refusal(earlier, jwks_path) == f"the token is for run an-earlier-run, not {RUN_ID}"


def test_a_token_for_a_run_this_one_continued_from_decides_it(jwks_path: Path):
    """A deployment whose gate took a long history continued as new: a token typed for the run
    it continued from is for the same deployment; a token for any other run is still not."""
    keys = trusted_keys(str(jwks_path))
    continued = DecisionClaims(WID, RUN_ID, "approve", earlier_runs=("run-1", "run-2"))
    typed_before = ED.token(WID, run_id="run-1")
    assert verify_decision_token(typed_before, keys, continued, ISSUER).subject == "alice"
    with pytest.raises(TokenRefusal) as refused:
        verify_decision_token(ED.token(WID, run_id="run-0"), keys, continued, ISSUER)
    assert str(refused.value) == f"the token is for run run-0, not {RUN_ID}"


def test_a_key_with_an_owner_verifies_only_its_owners_tokens(tmp_path: Path):
    bob = Approver("bob-key", owner="bob", issuer=None)
    keys = write_jwks(tmp_path / "people.json", bob)
    assert _subject(bob.token(WID), trusted_keys(str(keys))) == "bob"
    assert _refusal(bob.token(WID, sub="alice"), keys) == (
        "the token is signed by 'bob''s key 'bob-key' but names 'alice' as who decides"
    )


def test_a_key_without_an_owner_verifies_only_the_configured_issuers_tokens(jwks_path: Path):
    other_issuer = ED.token(WID, iss="https://elsewhere.example.com")
    assert "the token is from issuer 'https://elsewhere.example.com', not " in _refusal(
        other_issuer, jwks_path
    )
    assert _refusal(ED.token(WID), jwks_path, issuer=None) == (
        "the trusted key 'ed-1' names no owner (no 'sub' member, as an identity provider's "
        f"keys) and this worker trusts no issuer ({ISSUER_ENV} is unset): such a key verifies "
        "nothing"
    )


def test_a_token_id_must_be_a_string(jwks_path: Path):
    keys = trusted_keys(str(jwks_path))
    assert verify_decision_token(
        ED.token(WID, jti="j-1"), keys, DecisionClaims(WID, RUN_ID, "approve"), ISSUER
    ) == VerifiedToken("alice", "j-1")
    assert _refusal(ED.token(WID, jti=7), jwks_path) == (
        "the token is invalid: JWT ID must be a string"
    )


def test_a_token_for_the_other_action_is_refused(jwks_path: Path):
    refusal = _refusal(ED.token(WID, "reject"), jwks_path)
    assert refusal == "the token is for 'reject', not 'approve'"


def test_a_token_for_another_audience_is_refused(jwks_path: Path):
    assert _refusal(ED.token(WID, aud="billing"), jwks_path) == (
        "the token is for audience 'billing', not 'ecs-canary'"
    )


def test_a_token_that_lives_more_than_an_hour_is_refused(jwks_path: Path):
    assert "at most an hour is accepted" in _refusal(ED.token(WID, lifetime=2 * 3600), jwks_path)
    later = int(time.time()) + 2 * 3600  # issued "in an hour", valid for 5 minutes after that
    refusal = _refusal(ED.token(WID, iat=int(time.time()), exp=later), jwks_path)
    assert "at most an hour is accepted" in refusal


@pytest.mark.parametrize(
    "claim", ["exp", "iat", "sub", "workflow_id", "run_id", "action", "aud", "iss"]
)
def test_each_required_claim_must_be_there(claim: str, jwks_path: Path):
    missing = ED.token(WID, **{claim: None})
    assert _refusal(missing, jwks_path) == f"the token has no {claim!r} claim"


def test_a_token_from_the_future_is_refused(jwks_path: Path):
    soon = int(time.time()) + 600
    assert "not valid yet" in _refusal(ED.token(WID, iat=soon, exp=soon + 60), jwks_path)


def test_tokens_without_an_allowed_algorithm_or_a_kid_are_refused(jwks_path: Path):
    claims = {
        "sub": "alice",
        "aud": "ecs-canary",
        "workflow_id": WID,
        "run_id": RUN_ID,
        "action": "approve",
    }
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "ed-1"})
    assert "algorithm 'none' is not one of EdDSA, ES256, RS256" in _refusal(unsigned, jwks_path)
    shared_secret = jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": "ed-1"})
    assert "'HS256' is not one of" in _refusal(shared_secret, jwks_path)
    assert _refusal(jwt.encode(claims, ED.private_key, algorithm="EdDSA"), jwks_path) == (
        "the token's header names no key (kid)"
    )
    assert _refusal("not-a-jwt", jwks_path).startswith("the token is not a JWT")


def test_a_token_whose_algorithm_does_not_fit_its_key_is_refused(jwks_path: Path):
    # An ES256 signature under the kid of the Ed25519 key.
    mixed = EC.token(WID, headers={"kid": "ed-1"})
    assert "does not fit the trusted key 'ed-1'" in _refusal(mixed, jwks_path)


def test_the_shape_check_reads_only_the_header():
    assert token_shape_refusal(STRANGER.token(WID)) is None
    assert token_shape_refusal("a.b") is not None


def test_a_rewritten_jwks_file_takes_effect_at_the_next_verification(jwks_path: Path):
    keys = trusted_keys(str(jwks_path))
    assert _subject(ED.token(WID), keys) == "alice"
    rotated = Approver("ed-2", "EdDSA")
    write_jwks(jwks_path, rotated)
    assert _subject(rotated.token(WID), keys) == "alice"
    assert "no trusted key has kid 'ed-1'" in _refusal(ED.token(WID), jwks_path)


def test_a_jwks_that_cannot_be_read_gives_no_verdict(tmp_path: Path):
    (tmp_path / "broken.json").write_text("{not json")
    for path in (tmp_path / "missing.json", tmp_path / "broken.json"):
        with pytest.raises(KeysUnavailable, match="cannot read the trusted keys"):
            _subject(ED.token(WID), trusted_keys(str(path)))


def test_only_https_urls_or_local_http_are_fetched():
    with pytest.raises(KeysUnavailable, match="must be a JWKS file path or an https URL"):
        trusted_keys("http://idp.example.com/jwks.json")


def test_keys_from_a_jwks_url_are_fetched_and_cached():
    document = json.dumps({"keys": [ED.jwk]}).encode()
    fetched: list[str] = []

    class Jwks(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            fetched.append(self.path)
            self.answer(200, document, "application/json")

    with serving(Jwks) as base:
        keys = trusted_keys(f"{base}/.well-known/jwks.json")
        for _ in range(3):
            assert _subject(ED.token(WID), keys) == "alice"
        assert "no trusted key has kid 'stranger'" in str(_url_refusal(keys))
    # Fetched once: the unknown kid came within the refetch cooldown.
    assert fetched == ["/.well-known/jwks.json"]
    with pytest.raises(KeysUnavailable, match="cannot fetch the trusted keys"):
        keys = trusted_keys(f"{base}/gone.json")  # the server has stopped
        _subject(ED.token(WID), keys)


def _url_refusal(keys) -> TokenRefusal:
    with pytest.raises(TokenRefusal) as refused:
        _subject(STRANGER.token(WID), keys)
    return refused.value


@pytest.mark.parametrize(
    ("value", "required"),
    [
        (None, False),
        ("", False),
        ("false", False),
        ("0", False),
        ("No", False),
        ("true", True),
        ("1", True),
        ("YES", True),
        ("ture", True),
    ],
)
def test_the_worker_policy_is_on_for_anything_but_a_false_value(value, required):
    environ = {} if value is None else {"ECS_CANARY_REQUIRE_SIGNED_DECISIONS": value}
    assert signatures_required_by_env(environ) is required


async def test_the_activity_gives_a_verdict_for_every_token(jwks_path: Path, monkeypatch):
    monkeypatch.setenv(KEYS_ENV, str(jwks_path))
    monkeypatch.setenv(ISSUER_ENV, ISSUER)
    run = ActivityEnvironment().run
    token = RSA.token(WID, sub="bob", jti="once")
    good = VerifyDecisionInput(token=token, workflow_id=WID, run_id=RUN_ID, action="approve")
    verdict = await run(verify_decision, good)
    assert (verdict.subject, verdict.jti, verdict.refusal) == ("bob", "once", None)
    assert verdict.policy == PlatformPolicy()
    other = good.model_copy(update={"run_id": "a-later-run"})
    refused = await run(verify_decision, other)
    # Who a refused token names is never recorded as who decided.
    assert refused.subject is None
    assert refused.refusal == f"the token is for run {RUN_ID}, not a-later-run"
    monkeypatch.delenv(KEYS_ENV)
    unset = await run(verify_decision, good)
    assert unset.refusal == f"this worker trusts no signing keys ({KEYS_ENV} is unset)"
    monkeypatch.setenv(KEYS_ENV, str(jwks_path.parent / "missing.json"))
    with pytest.raises(ApplicationError, match="cannot read the trusted keys") as failed:
        await run(verify_decision, good)
    assert failed.value.type == "TrustedKeysUnavailable" and not failed.value.non_retryable
