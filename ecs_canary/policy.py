"""The platform's policy: the floor a deployment request cannot go below.

Whoever starts a run writes its request, gate included; the platform team writes this file
(`ECS_CANARY_POLICY_FILE`, a JSON object) on the workers. The worker checks the file when it
starts, so a typo stops it with the reason instead of quietly applying no policy. A run reads
it at its start (the start checks) and again with every decision (`verify_decision`), so a
policy tightened while a gate is open applies to the decisions that follow.

    {"require_approval": true, "min_approvals": 2, "allow_timeout_approve": false,
     "require_signed_decisions": true, "approvers": ["alice", "bob", "carol"],
     "egress": {"allow": [], "deny": ["10.0.0.0/8"]},
     "freeze_windows": [{"name": "launch", "start": "2026-12-24T00:00:00Z",
                         "end": "2026-12-27T00:00:00Z"},
                        {"name": "weekend", "cron": "0 18 * * 5", "duration_seconds": 223200,
                         "timezone": "Europe/Paris"}]}

`freeze_windows` (ecs_canary.freeze): a run that starts inside one waits until it ends, and
one in flight does not start its rolling deploy until it ends (README, "Pause, resume and
freeze windows").
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, ValidationError, field_validator, model_validator

from ecs_canary.freeze import FreezeWindow, check_unique_names
from ecs_canary.strict import StrictModel

if TYPE_CHECKING:
    from ecs_canary.models import VerificationSettings

POLICY_FILE_ENV = "ECS_CANARY_POLICY_FILE"
# The shorthand for `require_signed_decisions` (see ecs_canary.signing).
SIGNED_DECISIONS_ENV = "ECS_CANARY_REQUIRE_SIGNED_DECISIONS"
_FALSE = {"", "0", "false", "no", "off"}


class PolicyError(ValueError):
    """The policy file cannot be read or says something the worker cannot apply."""


def _network(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError as err:
        raise ValueError(f"{cidr!r} is not an address range (CIDR): {err}") from None


class EgressPolicy(StrictModel):
    """Where `http` steps and webhooks may connect (see ecs_canary.egress): `allow` lifts the
    link-local refusal for these ranges; `deny` refuses more."""

    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "deny")
    @classmethod
    def _cidrs(cls, ranges: list[str]) -> list[str]:
        return [_network(cidr) for cidr in ranges]


class PlatformPolicy(StrictModel):
    """The file's keys; each one left out asks for nothing."""

    require_approval: bool = False
    min_approvals: int = Field(1, ge=1)
    allow_timeout_approve: bool = True
    require_signed_decisions: bool = False
    approvers: list[str] = Field(default_factory=list)
    egress: EgressPolicy = Field(default_factory=EgressPolicy)
    freeze_windows: list[FreezeWindow] = Field(default_factory=list)

    @field_validator("freeze_windows")
    @classmethod
    def _windows_named_once(cls, windows: list[FreezeWindow]) -> list[FreezeWindow]:
        check_unique_names(windows)
        return windows

    @model_validator(mode="after")
    def _enough_approvers(self) -> PlatformPolicy:
        if self.approvers and self.min_approvals > len(set(self.approvers)):
            raise ValueError(
                f"min_approvals is {self.min_approvals} but only {len(set(self.approvers))} "
                "distinct approvers are listed"
            )
        return self

    def request_refusal(self, verification: VerificationSettings) -> str | None:
        """Why a request's gate is below this policy, naming the policy key; None if it is
        not."""
        where = f"the platform policy ({POLICY_FILE_ENV})"
        if self.require_approval and not verification.require_approval:
            return f"{where} requires approval (require_approval): the request has none"
        if verification.min_approvals < self.min_approvals:
            return (
                f"{where} requires at least {self.min_approvals} approvals (min_approvals): the "
                f"request asks for {verification.min_approvals}"
            )
        if not self.allow_timeout_approve and verification.on_timeout == "approve":
            return f'{where} does not allow on_timeout "approve" (allow_timeout_approve is false)'
        outsiders = sorted(set(verification.approvers) - set(self.approvers))
        if self.approvers and outsiders:
            return (
                f"{where} allows only {', '.join(self.approvers)} to decide (approvers): the "
                f"request names {', '.join(outsiders)}"
            )
        return None


def read_policy(environ: dict[str, str] | None = None) -> PlatformPolicy:
    """The worker's policy: the file `ECS_CANARY_POLICY_FILE` names (none: the empty policy),
    with `ECS_CANARY_REQUIRE_SIGNED_DECISIONS` as a shorthand for `require_signed_decisions`.
    PolicyError says what is wrong with the file."""
    env = os.environ if environ is None else environ
    path = env.get(POLICY_FILE_ENV, "").strip()
    policy = _load(Path(path)) if path else PlatformPolicy()
    if signatures_required_by_env(env):
        policy = policy.model_copy(update={"require_signed_decisions": True})
    return policy


def signatures_required_by_env(environ: dict[str, str] | os._Environ[str]) -> bool:
    """`ECS_CANARY_REQUIRE_SIGNED_DECISIONS`: a value that is neither true nor false requires
    signatures, so a typo never switches a security policy off."""
    return environ.get(SIGNED_DECISIONS_ENV, "").strip().lower() not in _FALSE


def _load(path: Path) -> PlatformPolicy:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PolicyError(
            f"cannot read the policy file {path} ({POLICY_FILE_ENV}): {err.strerror or err}"
        ) from None
    except ValueError as err:
        raise PolicyError(
            f"the policy file {path} ({POLICY_FILE_ENV}) is not JSON: {err}"
        ) from None
    try:
        return PlatformPolicy.model_validate(document)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'policy'}: {e['msg']}"
            for e in err.errors(include_url=False)
        )
        raise PolicyError(f"the policy file {path} ({POLICY_FILE_ENV}): {problems}") from None
