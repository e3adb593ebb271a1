"""What the worker says about a decision: the platform policy as it reads it now, and for a
signed decision the token's verdict.

The workflow cannot read the policy file, the trusted keys (a file, or an IdP's JWKS URL) nor
the clock the way verification needs, and a replay must never verify again: the keys may have
rotated since. So this activity gives the verdict and the history keeps it.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ecs_canary.models import DecisionVerdict, VerifyDecisionInput
from ecs_canary.policy import PlatformPolicy, PolicyError, read_policy
from ecs_canary.signing import (
    KEYS_ENV,
    DecisionClaims,
    KeysUnavailable,
    TokenRefusal,
    token_issuer_from_env,
    trusted_keys_from_env,
    verify_decision_token,
)


@activity.defn
async def verify_decision(request: VerifyDecisionInput) -> DecisionVerdict:
    """The policy, and the token's verified `sub` or why it proves nothing. A policy file that
    cannot be read refuses the decision (fail closed). Raises (and is retried) only when the
    trusted keys cannot be read or fetched, which says nothing about the token."""
    try:
        policy = read_policy()
    except PolicyError as err:
        return DecisionVerdict(refusal=f"the decision cannot be checked: {err}")
    if request.token is None:
        return DecisionVerdict(policy=policy)
    return await _verify(request, request.token, policy)


async def _verify(
    request: VerifyDecisionInput, token: str, policy: PlatformPolicy
) -> DecisionVerdict:
    try:
        keys = trusted_keys_from_env()
        if keys is None:
            why = f"this worker trusts no signing keys ({KEYS_ENV} is unset)"
            return DecisionVerdict(refusal=why, policy=policy)
        expected = DecisionClaims(
            request.workflow_id,
            request.run_id,
            request.action,
            tuple(request.earlier_run_ids),
        )
        # PyJWKClient fetches a URL with blocking I/O: off the worker's event loop.
        verified = await asyncio.to_thread(
            verify_decision_token, token, keys, expected, token_issuer_from_env()
        )
    except TokenRefusal as refusal:
        activity.logger.info(f"Refused a token to {request.action}: {refusal}")
        return DecisionVerdict(refusal=str(refusal), policy=policy)
    except KeysUnavailable as err:
        raise ApplicationError(str(err), type="TrustedKeysUnavailable") from err
    activity.logger.info(f"Verified {verified.subject}'s token to {request.action}")
    return DecisionVerdict(subject=verified.subject, jti=verified.jti, policy=policy)
