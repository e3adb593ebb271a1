"""What `approve`, `reject`, `pause`, ... send: the name of who decides, a token the approver
signs for this one run with their own key (`--key`, cli/approver_keys.py), or a token from the
company's IdP, passed on as is (`--token` or $ECS_CANARY_ID_TOKEN).

The worker verifies tokens against the keys it trusts (docs/signed-decisions.md).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from cli.errors import CliError
from cli.format import current_user
from cli.runs import RunOf
from ecs_canary.models import (
    MAX_BY_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TOKEN_LENGTH,
    DecisionInput,
)

TOKEN_ENV = "ECS_CANARY_ID_TOKEN"


def decision_input(args: argparse.Namespace) -> Callable[[RunOf], DecisionInput]:
    """What `approve`/`reject` sends, for the run it will be sent to: signed with `--key` (as
    the key's owner, its keygen NAME, unless `--by` says otherwise), a token from `--token` or
    $ECS_CANARY_ID_TOKEN (its `sub` names who decides), else just the name (`--by`). Every
    argument is checked here, before the starter asks Temporal which run that is."""
    key, token = getattr(args, "key", None), getattr(args, "token", None)  # optional to callers
    for option, value, limit in (
        ("--by", args.by, MAX_BY_LENGTH),
        ("--reason", args.reason, MAX_REASON_LENGTH),
    ):
        if value is not None and len(value) > limit:
            raise CliError(f"{option} is longer than {limit} characters ({len(value)})", 2)
    if key:
        from cli.approver_keys import key_owner, load_private_key, sign_decision  # PyJWT: --key

        private_key, subject = load_private_key(key), args.by or key_owner(key)
        return lambda run: DecisionInput(
            reason=args.reason, token=sign_decision(private_key, subject, run, args.command)
        )
    token = (token or os.environ.get(TOKEN_ENV) or "").strip()
    if token:
        if args.by:
            why = "the token's sub says who decides"
            raise CliError(f"--by cannot go with a token (--token or ${TOKEN_ENV}): {why}", 2)
        if len(token) > MAX_TOKEN_LENGTH:
            raise CliError(f"the token is longer than {MAX_TOKEN_LENGTH} characters", 2)
        return lambda run: DecisionInput(reason=args.reason, token=token)
    by = args.by or current_user()
    if not by:
        raise CliError("cannot tell who decides ($USER is not set, no login name): pass --by", 2)
    return lambda run: DecisionInput(by=by, reason=args.reason)
