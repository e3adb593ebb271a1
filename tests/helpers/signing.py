"""Approvers' keys for the signed-decision tests: Ed25519, ES256 and RS256 key pairs, the JWKS
the worker trusts, and tokens with any claim changed (PyJWT signs them)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ecs_canary.signing import AUDIENCE, jwks

_KEYS: dict[str, Any] = {
    "EdDSA": (Ed25519PrivateKey.generate, OKPAlgorithm),
    "ES256": (lambda: ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
    "RS256": (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
}


@dataclass
class Approver:
    """One signing key (what an IdP or `starter.py keygen` holds) and its public JWK."""

    kid: str
    alg: str = "EdDSA"
    private_key: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        make, _ = _KEYS[self.alg]
        self.private_key = make()

    @property
    def jwk(self) -> dict[str, Any]:
        _, algorithm = _KEYS[self.alg]
        public = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def token(
        self,
        wid: str,
        action: str = "approve",
        sub: str = "alice",
        lifetime: float = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A decision token for run `wid`; `claims` replace (or, set to None, drop) any
        standard claim."""
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": sub,
            "aud": AUDIENCE,
            "workflow_id": wid,
            "action": action,
            "iat": now,
            "exp": now + int(lifetime),
            **claims,
        }
        body = {name: value for name, value in body.items() if value is not None}
        header = {"kid": self.kid, **(headers or {})}
        return jwt.encode(body, self.private_key, algorithm=self.alg, headers=header)


def write_jwks(path: Path, *approvers: Approver) -> Path:
    """The JWKS file the worker reads (ECS_CANARY_APPROVER_KEYS), holding these public keys."""
    path.write_text(jwks(*(approver.jwk for approver in approvers)))
    return path
