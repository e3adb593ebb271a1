"""Signed decisions: what a decision's token must prove, and the keys the worker trusts.

A token is a JWT (EdDSA/Ed25519, ES256 or RS256) whose `sub` is who decides, bound to one run
(`workflow_id` and `run_id`: the workflow id is the same for every deployment of a service),
one action and a short lifetime, so a token someone copies from a history or a log approves
nothing else. A key is one person's: a trusted JWK with a `sub` member verifies only that
subject's tokens, and one without (an identity provider's) only tokens from the issuer the
worker names. PyJWT does the JWT work; this module only says which claims a decision needs and
turns each way a token can fail into a reason a person can act on.

Verification needs key material and the clock, so it runs on the worker in an activity
(`activities.decisions`); the workflow records the verdict. Nothing here is workflow code.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import jwt

from ecs_canary.models import MAX_BY_LENGTH

AUDIENCE = "ecs-canary"
ALGORITHMS = ["EdDSA", "ES256", "RS256"]
REQUIRED_CLAIMS = ["sub", "aud", "exp", "iat", "workflow_id", "run_id", "action"]
# A token approves one decision soon after it was made: an hour bounds what a leaked one is
# worth (the starter signs for five minutes).
MAX_LIFETIME_SECONDS = 3600
# Clock skew between whoever signed (a laptop, an IdP) and the worker.
LEEWAY_SECONDS = 30
# Worker settings (docs/signed-decisions.md; the policy's are in ecs_canary.policy).
KEYS_ENV = "ECS_CANARY_APPROVER_KEYS"
# The issuer (`iss`) whose tokens the keys without a `sub` member (an IdP's) may verify.
ISSUER_ENV = "ECS_CANARY_TOKEN_ISSUER"
# How long a JWKS fetched from a URL is used before it is fetched again; an unknown kid fetches
# it again sooner (a rotated key), at most every REFETCH_COOLDOWN_SECONDS.
URL_CACHE_SECONDS = 300
REFETCH_COOLDOWN_SECONDS = 10


class TokenRefusal(ValueError):
    """Why a token proves nothing; the text is recorded as the decision's refusal."""


class KeysUnavailable(RuntimeError):
    """The trusted keys could not be read or fetched: no verdict on the token yet."""


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified token proves: who decides, and the token's id (`jti`) if it has one,
    which a run accepts once."""

    subject: str
    jti: str | None = None


class TrustedKeys(Protocol):
    """Where the worker's trusted public keys come from; looked up by the token's `kid`."""

    source: str

    def key(self, kid: str) -> jwt.PyJWK:
        """The key with this kid; TokenRefusal if there is none, KeysUnavailable if the keys
        cannot be read."""
        ...


def _usable(jwk_set: jwt.PyJWKSet, kid: str, source: str) -> jwt.PyJWK:
    for candidate in jwk_set.keys:
        if candidate.key_id == kid and candidate.public_key_use in ("sig", None):
            return candidate
    raise TokenRefusal(_unknown_kid(kid, source))


def _unknown_kid(kid: str, source: str) -> str:
    return f"no trusted key has kid {kid!r} (keys from {source})"


@dataclass
class JwksFile:
    """A JWKS file, read again whenever it changes: a rotation takes effect on the next
    decision, without restarting the worker."""

    source: str
    _loaded: tuple[tuple[int, int], jwt.PyJWKSet] | None = field(default=None, repr=False)

    def key(self, kid: str) -> jwt.PyJWK:
        path = Path(self.source)
        try:
            stat = path.stat()
            version = (stat.st_mtime_ns, stat.st_size)
            if self._loaded is None or self._loaded[0] != version:
                self._loaded = (version, jwt.PyJWKSet.from_json(path.read_text()))
        except (OSError, ValueError, jwt.PyJWTError) as err:
            raise KeysUnavailable(f"cannot read the trusted keys from {path}: {err}") from err
        return _usable(self._loaded[1], kid, self.source)


@dataclass
class JwksUrl:
    """An IdP's JWKS endpoint, fetched by PyJWKClient and cached in the worker process."""

    source: str
    _client: jwt.PyJWKClient = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._client = jwt.PyJWKClient(
            self.source,
            lifespan=URL_CACHE_SECONDS,
            cooldown_duration=REFETCH_COOLDOWN_SECONDS,
            timeout=10,
        )

    def key(self, kid: str) -> jwt.PyJWK:
        unavailable = f"cannot fetch the trusted keys from {self.source}"
        try:
            # The cached set while it is fresh; fetched again (at most every
            # REFETCH_COOLDOWN_SECONDS) for a kid it lacks.
            return self._client.get_signing_key(kid)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as err:
            raise KeysUnavailable(f"{unavailable}: {err}") from err
        except jwt.PyJWKClientError as err:
            if "Unable to find a signing key" not in str(err):
                raise KeysUnavailable(f"{unavailable}: {err}") from err
            raise TokenRefusal(_unknown_kid(kid, self.source)) from None


_CACHE: dict[str, TrustedKeys] = {}
_CACHE_LOCK = threading.Lock()


def trusted_keys(source: str) -> TrustedKeys:
    """The keys at `source` (a JWKS file path, or an https URL; http only to this machine,
    for a local IdP), one cache per source for the worker process's lifetime."""
    with _CACHE_LOCK:
        if source not in _CACHE:
            _CACHE[source] = _open(source)
        return _CACHE[source]


def _open(source: str) -> TrustedKeys:
    url = urlparse(source)
    if url.scheme == "https" or (
        url.scheme == "http" and url.hostname in ("localhost", "127.0.0.1", "::1")
    ):
        return JwksUrl(source)
    if url.scheme in ("http", "file") or "://" in source:
        raise KeysUnavailable(f"{KEYS_ENV} must be a JWKS file path or an https URL, not {source}")
    return JwksFile(source)


def trusted_keys_from_env(environ: dict[str, str] | None = None) -> TrustedKeys | None:
    """The worker's trusted keys (`ECS_CANARY_APPROVER_KEYS`); None when none are set."""
    source = (os.environ if environ is None else environ).get(KEYS_ENV, "").strip()
    return trusted_keys(source) if source else None


def token_shape_refusal(token: str) -> str | None:
    """Why `token` cannot even be a decision's JWT (for the Update validator, which cannot
    verify: no keys, no clock); None if it might be one. Reads the header only."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as err:
        return f"the token is not a JWT: {err}"
    if header.get("alg") not in ALGORITHMS:
        return f"the token's algorithm {header.get('alg')!r} is not one of {', '.join(ALGORITHMS)}"
    if not isinstance(header.get("kid"), str):
        return "the token's header names no key (kid)"
    return None


def token_issuer_from_env(environ: dict[str, str] | None = None) -> str | None:
    """The issuer whose tokens the keys without a `sub` verify (`ECS_CANARY_TOKEN_ISSUER`)."""
    issuer = (os.environ if environ is None else environ).get(ISSUER_ENV, "").strip()
    return issuer or None


@dataclass(frozen=True)
class DecisionClaims:
    """What a token must be for: this run of this workflow, and this action. `earlier_runs`:
    the runs this one continued from (a deployment whose gate took a long history continues as
    new, workflows.continue_at_gate): the same deployment, so a token typed for one of them
    still decides it; never a run of another deployment."""

    workflow_id: str
    run_id: str
    action: str
    earlier_runs: tuple[str, ...] = ()


def verify_decision_token(
    token: str,
    keys: TrustedKeys,
    expected: DecisionClaims,
    issuer: str | None = None,
    now: float | None = None,
) -> VerifiedToken:
    """Who a token for `expected` proves decides; TokenRefusal (with the reason) if it does not
    prove that, KeysUnavailable if no verdict is possible. `issuer`: the `iss` a key without a
    `sub` member requires (None: such a key verifies nothing)."""
    kid, key = signing_key(token, keys)
    owner = key_owner(key)
    if owner is None and issuer is None:
        raise TokenRefusal(
            f"the trusted key {kid!r} names no owner (no 'sub' member, as an identity "
            f"provider's keys) and this worker trusts no issuer ({ISSUER_ENV} is unset): such "
            "a key verifies nothing"
        )
    required = REQUIRED_CLAIMS if owner else [*REQUIRED_CLAIMS, "iss"]
    try:
        claims = verified_claims(token, key, AUDIENCE, required, None if owner else issuer)
    except jwt.PyJWTError as err:
        raise TokenRefusal(_why(err, token, kid, issuer)) from None
    subject = _check_claims(claims, expected, time.time() if now is None else now)
    if owner is not None and subject != owner:
        raise TokenRefusal(
            f"the token is signed by {owner!r}'s key {kid!r} but names {subject!r} as who decides"
        )
    return VerifiedToken(subject, claims.get("jti") or None)  # PyJWT checks it is a string


def signing_key(token: str, keys: TrustedKeys) -> tuple[str, jwt.PyJWK]:
    """The kid a token names and the trusted key under it; TokenRefusal if the token cannot be
    a JWT we accept or no key has its kid."""
    shape = token_shape_refusal(token)
    if shape is not None:
        raise TokenRefusal(shape)
    kid = jwt.get_unverified_header(token)["kid"]
    return kid, keys.key(kid)


def verified_claims(
    token: str, key: jwt.PyJWK, audience: str, required: list[str], issuer: str | None = None
) -> dict[str, Any]:
    """The token's claims once its signature, audience, lifetime and `required` claims (and
    `issuer`, if given) check out; PyJWT's error otherwise."""
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=ALGORITHMS,
        audience=audience,
        leeway=LEEWAY_SECONDS,
        options={"require": required},
        issuer=issuer,
    )
    return claims


def key_owner(key: jwt.PyJWK) -> str | None:
    """The JWK's `sub` member: the one person whose tokens the key may verify. PyJWT keeps a
    JWK's members in `_jwk_data` and names only kty, kid and use."""
    owner = key._jwk_data.get("sub")
    return owner if isinstance(owner, str) and owner.strip() else None


def _check_claims(claims: dict[str, Any], expected: DecisionClaims, now: float) -> str:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject.strip():
        raise TokenRefusal("the token's sub (who decides) is empty")
    if len(subject) > MAX_BY_LENGTH:
        raise TokenRefusal(f"the token's sub is longer than {MAX_BY_LENGTH} characters")
    if claims["workflow_id"] != expected.workflow_id:
        raise TokenRefusal(
            f"the token is for workflow {claims['workflow_id']!r}, not {expected.workflow_id!r}"
        )
    if claims["run_id"] != expected.run_id and claims["run_id"] not in expected.earlier_runs:
        raise TokenRefusal(f"the token is for run {claims['run_id']}, not {expected.run_id}")
    if claims["action"] != expected.action:
        raise TokenRefusal(f"the token is for {claims['action']!r}, not {expected.action!r}")
    expires, issued = float(claims["exp"]), float(claims["iat"])
    limit = MAX_LIFETIME_SECONDS + LEEWAY_SECONDS
    if expires - issued > limit:
        raise TokenRefusal(
            f"the token lives {round((expires - issued) / 60)} minutes (issued "
            f"{_instant(issued)}, expires {_instant(expires)}): at most an hour is accepted"
        )
    if expires - now > limit:
        raise TokenRefusal(
            f"the token expires at {_instant(expires)}, more than an hour from now: at most an "
            "hour is accepted"
        )
    return subject


def _why(err: jwt.PyJWTError, token: str, kid: str, expected_issuer: str | None) -> str:
    """PyJWT's error in words for the person whose decision it refuses."""
    if isinstance(err, jwt.ExpiredSignatureError):
        expired = jwt.decode(token, options={"verify_signature": False}).get("exp")
        return f"the token expired at {_instant(float(expired))}" if expired else str(err)
    if isinstance(err, jwt.InvalidSignatureError):
        return f"the token's signature does not match the trusted key {kid!r}"
    if isinstance(err, jwt.InvalidAudienceError):
        audience = jwt.decode(token, options={"verify_signature": False}).get("aud")
        return f"the token is for audience {audience!r}, not {AUDIENCE!r}"
    if isinstance(err, jwt.InvalidIssuerError):
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        return (
            f"the token is from issuer {issuer!r}, not {expected_issuer!r} ({ISSUER_ENV}), "
            f"which the trusted key {kid!r} (an identity provider's, without a 'sub') requires"
        )
    if isinstance(err, jwt.MissingRequiredClaimError):
        return f"the token has no {err.claim!r} claim"
    if isinstance(err, jwt.ImmatureSignatureError):
        return f"the token is not valid yet: {err}"
    if isinstance(err, jwt.InvalidAlgorithmError):
        return f"the token's algorithm does not fit the trusted key {kid!r}: {err}"
    return f"the token is invalid: {err}"


def _instant(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def jwks(*public_jwks: dict[str, Any]) -> str:
    """A JWKS document holding these public JWKs, as the worker reads it."""
    return json.dumps({"keys": list(public_jwks)}, indent=2)
