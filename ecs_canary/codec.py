"""Encrypted payloads: an AES-256-GCM payload codec, so Temporal's history (and its database,
and anyone who can read the namespace) holds ciphertext instead of the task definition's
`environment` values and notification URLs. See docs/payload-encryption.md.

The keys come from a JSON file named by `ECS_CANARY_PAYLOAD_KEY_FILE`:

    {"active": "k2", "keys": {"k1": "<base64 of 32 bytes>", "k2": "..."}}

New payloads are encrypted with the `active` key; each one records the id of its key in its
metadata, so a payload written before a rotation still decodes as long as its key stays listed.
The same codec serves the worker, the starter and the codec server (`cli/codec_server.py`)
that lets the `temporal` CLI and the Web UI show decoded payloads.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

KEY_FILE_ENV = "ECS_CANARY_PAYLOAD_KEY_FILE"
ENCODING = b"binary/encrypted"
# Metadata names: `encoding` is Temporal's own (the CLI and the Web UI show it); the key id is
# ours, in the style of Temporal's encryption samples.
ENCODING_KEY = "encoding"
KEY_ID_KEY = "encryption-key-id"
# What the worker's codec puts in place of a payload it cannot decode: the reason, as the
# payload's data (see WorkerEncryptionCodec).
UNDECODABLE = b"binary/undecodable"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's 96-bit nonce, random per payload: 2^32 payloads per key stay safe
# Key ids travel in every payload's metadata and in error messages: short and plain.
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_NEW_KEY_HINT = "python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())'"


class PayloadKeyError(ValueError):
    """The key file cannot be used, or a payload names a key it does not have: raised at
    startup (worker, starter, codec server) or when a payload is decoded, with what to fix."""


class PayloadDecryptionError(ValueError):
    """A payload's ciphertext failed authentication: it was altered after it was written, or
    the key under its id is not the one it was encrypted with."""


@dataclass(frozen=True)
class PayloadKeys:
    """The parsed key file: which key encrypts (`active`) and every key that may decrypt."""

    active: str
    keys: Mapping[str, bytes]
    source: str = "the key file"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PayloadKeys | None:
        """The keys of `ECS_CANARY_PAYLOAD_KEY_FILE`; None when it is unset or empty (no
        encryption)."""
        path = (os.environ if environ is None else environ).get(KEY_FILE_ENV, "").strip()
        return cls.load(path) if path else None

    @classmethod
    def load(cls, path: str | Path) -> PayloadKeys:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise PayloadKeyError(
                f"cannot read the payload key file {path} ({KEY_FILE_ENV}): {err.strerror or err}"
            ) from None
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str = "the key file") -> PayloadKeys:
        """Check the whole file, so a bad key is found when a process starts, not when the
        first payload that needs it arrives."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise PayloadKeyError(f"payload key file {source} is not JSON: {err}") from None
        expected = '{"active": "k1", "keys": {"k1": "<base64 of 32 bytes>"}}'
        if not isinstance(document, dict) or set(document) != {"active", "keys"}:
            raise PayloadKeyError(
                f"payload key file {source} must be an object with exactly 'active' and "
                f"'keys': {expected}"
            )
        raw_keys, active = document["keys"], document["active"]
        if not isinstance(raw_keys, dict) or not raw_keys:
            raise PayloadKeyError(f"payload key file {source}: 'keys' must name at least one key")
        keys = {
            key_id: _key_bytes(key_id, material, source) for key_id, material in raw_keys.items()
        }
        if not isinstance(active, str) or active not in keys:
            raise PayloadKeyError(
                f"payload key file {source}: active key {active!r} is not in 'keys' "
                f"(it has: {', '.join(sorted(keys))})"
            )
        return cls(active=active, keys=keys, source=source)

    def describe(self) -> str:
        """For startup lines: the ids only, never key material."""
        return f"{self.source} (active key {self.active}; keys {', '.join(sorted(self.keys))})"


def _key_bytes(key_id: object, material: object, source: str) -> bytes:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise PayloadKeyError(
            f"payload key file {source}: key id {key_id!r} must be 1 to 64 letters, digits, "
            "'.', '_' or '-'"
        )
    if not isinstance(material, str):
        raise PayloadKeyError(f"payload key file {source}: key {key_id!r} must be a base64 string")
    try:
        key = base64.b64decode(material, validate=True)
    except (binascii.Error, ValueError):
        raise PayloadKeyError(
            f"payload key file {source}: key {key_id!r} is not valid base64 (make one with "
            f"{_NEW_KEY_HINT})"
        ) from None
    if len(key) != KEY_BYTES:
        raise PayloadKeyError(
            f"payload key file {source}: key {key_id!r} is {len(key)} bytes; AES-256 needs "
            f"{KEY_BYTES} (make one with {_NEW_KEY_HINT})"
        )
    return key


def new_key() -> str:
    """A fresh key for the key file: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each whole payload (its metadata and data), so even the original
    encoding is hidden. The key id is also the ciphertext's associated data: a payload whose
    recorded id was changed fails authentication instead of decrypting under another key.

    Payloads that are not ours (`encoding` other than binary/encrypted) decode unchanged: runs
    started before encryption was turned on stay readable.
    """

    def __init__(self, keys: PayloadKeys) -> None:
        self.keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.keys.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={ENCODING_KEY: ENCODING, KEY_ID_KEY: key_id.encode()}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING_KEY) != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_KEY, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"a payload was encrypted with key {key_id!r}, which {self.keys.source} does not "
                f"have (it has: {', '.join(sorted(self._ciphers))}); keep retired keys in "
                "'keys' for as long as histories written with them must be read"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except (InvalidTag, ValueError):  # ValueError: too short to hold a nonce
            raise PayloadDecryptionError(
                f"a payload encrypted with key {key_id!r} failed authentication: it was altered, "
                f"or {self.keys.source} holds a different key under that id"
            ) from None
        decrypted = Payload()
        decrypted.ParseFromString(plain)
        return decrypted


class WorkerEncryptionCodec(EncryptionCodec):
    """The worker's codec. The SDK decodes every payload of a workflow activation before
    workflow code runs, and a codec that raises fails the workflow task, which the server
    retries forever: one signal encrypted with an unknown key, or altered, would wedge its run
    with the canary still serving. Here such a payload decodes to an UNDECODABLE one that says
    why, which the workflow reads like any unreadable input (workflows.payloads): a decision is
    refused and recorded, a start's input fails the run with InvalidRequest."""

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt_or_explain(payload) for payload in payloads]

    def _decrypt_or_explain(self, payload: Payload) -> Payload:
        try:
            return self.decrypt(payload)
        except (PayloadKeyError, PayloadDecryptionError) as err:
            return Payload(metadata={ENCODING_KEY: UNDECODABLE}, data=str(err).encode())
        except Exception as err:  # noqa: BLE001 - a payload's fault, never the run's
            why = f"a payload could not be decrypted: {type(err).__name__}: {err}"
            return Payload(metadata={ENCODING_KEY: UNDECODABLE}, data=why.encode())
