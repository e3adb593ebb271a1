"""The starter's side of signed decisions: an approver's own Ed25519 key, and the short-lived
token it signs for one decision (or a token from the company's IdP, passed on as is).

The worker trusts the public half (a JWK in its JWKS file, see docs/signed-decisions.md); the
private half never leaves the approver's machine. PyJWT and cryptography do the work.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from cli.errors import CliError
from cli.format import current_user
from ecs_canary.models import (
    MAX_BY_LENGTH,
    MAX_REASON_LENGTH,
    MAX_TOKEN_LENGTH,
    DecisionInput,
)
from ecs_canary.signing import AUDIENCE

TOKEN_ENV = "ECS_CANARY_ID_TOKEN"
# Long enough to reach the worker, short enough that a copied token is soon worth nothing.
TOKEN_LIFETIME_SECONDS = 300


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """The JWK's RFC 7638 thumbprint: a kid derived from the key itself, so the starter can
    name the key it signs with from the private key file alone."""
    members = {name: public_jwk[name] for name in ("crv", "kty", "x")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def public_jwk(private_key: Ed25519PrivateKey, owner: str | None = None) -> dict[str, Any]:
    """The public JWK the worker's JWKS needs: kid, alg and use included, and `sub`, the one
    person whose tokens it verifies."""
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    owned = {"sub": owner} if owner else {}
    return {**jwk, "kid": thumbprint(jwk), "alg": "EdDSA", "use": "sig", **owned}


def key_path(name: str) -> Path:
    return Path(name if name.endswith(".pem") else f"{name}.pem")


def key_owner(name: str) -> str:
    """Whose key NAME (or NAME.pem, or a path to it) is: its file name without `.pem`."""
    return key_path(name).stem


def keygen(args: argparse.Namespace) -> int:
    """`starter.py keygen NAME`: write NAME.pem (readable by its owner only), print the JWK,
    which carries `"sub": NAME`: the worker then verifies only NAME's tokens with it."""
    path = key_path(args.name)
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:  # never overwrite a key: the JWK the worker trusts may be its public half
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{path} exists; choose another name or remove it first", 2) from None
    except OSError as err:
        raise CliError(f"cannot write {path}: {err.strerror or err}", 2) from None
    with os.fdopen(descriptor, "wb") as key_file:
        key_file.write(pem)
    print(json.dumps(public_jwk(private_key, key_owner(args.name))), flush=True)
    print(
        f"wrote the private key {path} (keep it to yourself); the line above is its public "
        "JWK: add it to the JWKS file the worker reads (ECS_CANARY_APPROVER_KEYS)",
        file=sys.stderr,
    )
    return 0


def load_private_key(path: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}", 2) from None
    except (ValueError, TypeError) as err:
        raise CliError(f"{path} is not an unencrypted PEM private key: {err}", 2) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CliError(f"{path} is not an Ed25519 key (make one with: starter.py keygen)", 2)
    return key


def sign_decision(
    private_key: Ed25519PrivateKey,
    subject: str,
    run: RunOf,
    action: str,
    lifetime: float = TOKEN_LIFETIME_SECONDS,
) -> str:
    """A token for one decision: `action` on one run by `subject`, with a fresh `jti` (the run
    accepts it once)."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "aud": AUDIENCE,
        "workflow_id": run.workflow_id,
        "run_id": run.run_id,
        "action": action,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + int(lifetime),
    }
    kid = thumbprint(public_jwk(private_key))
    return jwt.encode(claims, private_key, algorithm="EdDSA", headers={"kid": kid})


@dataclass(frozen=True)
class RunOf:
    """The run a decision is for: its workflow id and its run id."""

    workflow_id: str
    run_id: str


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
