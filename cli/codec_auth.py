"""Who may use the codec server once it listens beyond loopback: every request carries
`Authorization: Bearer <JWT>` whose `aud` is "ecs-canary-codec", signed by a key of the JWKS
given with `--auth-keys` (a file, or an IdP's https URL: the keys of ecs_canary.signing).

The server decrypts whatever it is sent, so anyone who can reach it reads the payloads the
history hides. On 127.0.0.1 only this machine can; elsewhere a token must say who asks. The
Web UI passes its user's access token when its codec setting "include credentials" is on
(docs/payload-encryption.md); the `temporal` CLI passes one with `--codec-auth`.
"""

from __future__ import annotations

import ipaddress

import jwt

from ecs_canary.signing import TokenRefusal, TrustedKeys, signing_key, verified_claims

CODEC_AUDIENCE = "ecs-canary-codec"


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the server to this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def codec_caller(authorization: str | None, keys: TrustedKeys) -> str:
    """Who the request's bearer token says asks (its `sub`, else `client_id`, else its kid);
    TokenRefusal with the reason when it proves nothing, KeysUnavailable when the keys
    cannot be read."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefusal("an Authorization: Bearer <JWT> header is required")
    token = token.strip()
    kid, key = signing_key(token, keys)
    try:
        claims = verified_claims(token, key, CODEC_AUDIENCE, ["exp", "aud"])
    except jwt.InvalidAudienceError:
        raise TokenRefusal(f"the token is not for audience {CODEC_AUDIENCE!r}") from None
    except jwt.PyJWTError as err:
        raise TokenRefusal(f"the token is invalid: {err}") from None
    return str(claims.get("sub") or claims.get("client_id") or kid)
