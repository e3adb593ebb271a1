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


# The run the unit tests' tokens are for; end-to-end tests pass the real run's id.
RUN_ID = "0190c6f2-run-1"
# The issuer of the test IdP's tokens (ECS_CANARY_TOKEN_ISSUER on the worker).
ISSUER = "https://idp.example.com"


@dataclass
class Approver:
    """One signing key and its public JWK: a person's (`owner`: the JWK's `sub`, as
    `starter.py keygen` writes it) or an IdP's (no owner; its tokens carry `iss`)."""

    kid: str
    alg: str = "EdDSA"
    owner: str | None = None
    issuer: str | None = ISSUER
    private_key: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        make, _ = _KEYS[self.alg]
        self.private_key = make()

    @property
    def jwk(self) -> dict[str, Any]:
        _, algorithm = _KEYS[self.alg]
        public = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        owned = {"sub": self.owner} if self.owner else {}
        return {**public, "kid": self.kid, "alg": self.alg, "use": "sig", **owned}

    def token(
        self,
        wid: str,
        action: str = "approve",
        lifetime: float = 300,
        headers: dict[str, Any] | None = None,
        run_id: str = RUN_ID,
        **claims: Any,
    ) -> str:
        """A decision token for run `run_id` of workflow `wid`, by the key's owner (else alice);
        `claims` replace (or, set to None, drop) any standard claim, `sub` included."""
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": self.owner or "alice",
            "aud": AUDIENCE,
            "workflow_id": wid,
            "run_id": run_id,
            "action": action,
            "iss": self.issuer,
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
