"""Verifying a decision's token on the worker.

The workflow cannot read the trusted keys (a file, or an IdP's JWKS URL) nor the clock the way
verification needs, and a replay must never verify again: the keys may have rotated since.
So this activity gives the verdict and the history keeps it.
"""

from __future__ import annotations

import asyncio

import jwt
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ecs_canary.models import DecisionVerdict, VerifyDecisionInput
from ecs_canary.signing import (
    KEYS_ENV,
    KeysUnavailable,
    TokenRefusal,
    trusted_keys_from_env,
    verify_decision_token,
)


@activity.defn
async def verify_decision(request: VerifyDecisionInput) -> DecisionVerdict:
    """The token's verified `sub`, or why it proves nothing. Raises (and is retried) only
    when the trusted keys cannot be read or fetched, which says nothing about the token."""
    claimed = _claimed_subject(request.token)
    try:
        keys = trusted_keys_from_env()
        if keys is None:
            return DecisionVerdict(
                subject=claimed, refusal=f"this worker trusts no signing keys ({KEYS_ENV} is unset)"
            )
        # PyJWKClient fetches a URL with blocking I/O: off the worker's event loop.
        subject = await asyncio.to_thread(
            verify_decision_token, request.token, keys, request.workflow_id, request.action
        )
    except TokenRefusal as refusal:
        activity.logger.info(f"Refused a token to {request.action}: {refusal}")
        return DecisionVerdict(subject=claimed, refusal=str(refusal))
    except KeysUnavailable as err:
        raise ApplicationError(str(err), type="TrustedKeysUnavailable") from err
    activity.logger.info(f"Verified {subject}'s token to {request.action}")
    return DecisionVerdict(subject=subject)


def _claimed_subject(token: str) -> str | None:
    """Who an unverified token says it is, for the record of a refused attempt."""
    try:
        subject = jwt.decode(token, options={"verify_signature": False}).get("sub")
    except jwt.PyJWTError:
        return None
    return subject if isinstance(subject, str) else None
