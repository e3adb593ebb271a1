"""An approver's own Ed25519 key (`starter.py keygen NAME`) and the short-lived token it signs
for one decision (`approve --key`, `reject --key`, ...).

The worker trusts the public half (a JWK in its JWKS file, see docs/signed-decisions.md); the
private half never leaves the approver's machine. PyJWT and cryptography do the work; they
take a while to import, so this module stands apart from `cli.signing` (what every decision
sends), which imports it only for `--key`.
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
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from cli.errors import CliError
from cli.runs import RunOf
from ecs_canary.signing import AUDIENCE

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
