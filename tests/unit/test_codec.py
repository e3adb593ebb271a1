"""The AES-256-GCM payload codec (ecs_canary/codec.py) and the data converter built on it:
round trip, key rotation, tamper detection, and a clear error for every unusable key file."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import temporalio.api.failure.v1
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from ecs_canary.codec import (
    ENCODING,
    KEY_FILE_ENV,
    KEY_ID_KEY,
    NONCE_BYTES,
    UNDECODABLE,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKeyError,
    PayloadKeys,
    WorkerEncryptionCodec,
    new_key,
)
from ecs_canary.gate import GateRefusal
from ecs_canary.temporal import DATA_CONVERTER, data_converter, encrypted_data_converter

SECRET = "ECS_CANARY_MARKER_unit"
# A valid key that is the same in every process: pytest-xdist's workers must collect the same
# test ids, and a parametrized document holding new_key() would differ in each.
A_KEY = base64.b64encode(bytes(32)).decode()


def _key_file(tmp_path: Path, active: str, **keys: str) -> Path:
    path = tmp_path / "payload-keys.json"
    path.write_text(json.dumps({"active": active, "keys": keys}))
    return path


def _keys(active: str, **keys: str) -> PayloadKeys:
    return PayloadKeys.parse(json.dumps({"active": active, "keys": keys}))


def _payloads(*values: object) -> list[Payload]:
    return DATA_CONVERTER.payload_converter.to_payloads(list(values))


def _values(payloads: list[Payload]) -> list[object]:
    return DATA_CONVERTER.payload_converter.from_payloads(payloads)


@pytest.fixture
def k1() -> str:
    return new_key()


@pytest.fixture
def k2() -> str:
    return new_key()


# Round trip and what an encrypted payload shows


async def test_round_trip_hides_data_and_encoding(tmp_path: Path, k1: str) -> None:
    codec = EncryptionCodec(PayloadKeys.load(_key_file(tmp_path, "k1", k1=k1)))
    original = _payloads({"environment": [{"name": "DB_URL", "value": SECRET}]}, "plain", 7)

    encoded = await codec.encode(original)

    for payload in encoded:
        assert dict(payload.metadata) == {"encoding": ENCODING, KEY_ID_KEY: b"k1"}
        assert SECRET.encode() not in payload.SerializeToString()
        assert b"json/plain" not in payload.data  # the original metadata is encrypted too
    assert await codec.decode(encoded) == original
    assert _values(await codec.decode(encoded))[1:] == ["plain", 7]


async def test_each_payload_gets_its_own_nonce(tmp_path: Path, k1: str) -> None:
    codec = EncryptionCodec(PayloadKeys.load(_key_file(tmp_path, "k1", k1=k1)))
    same = _payloads("x", "x")
    first, second = await codec.encode(same)
    assert first.data[:NONCE_BYTES] != second.data[:NONCE_BYTES]
    assert first.data != second.data


async def test_payloads_that_are_not_encrypted_decode_unchanged(tmp_path: Path, k1: str) -> None:
    # Runs started before encryption was turned on stay readable.
    codec = EncryptionCodec(PayloadKeys.load(_key_file(tmp_path, "k1", k1=k1)))
    plain = _payloads({"a": 1})
    assert await codec.decode(plain) == plain


# Rotation


async def test_rotation_old_payloads_decode_and_new_ones_use_the_active_key(
    tmp_path: Path, k1: str, k2: str
) -> None:
    before = EncryptionCodec(PayloadKeys.load(_key_file(tmp_path, "k1", k1=k1)))
    old = await before.encode(_payloads(SECRET))

    after = EncryptionCodec(PayloadKeys.load(_key_file(tmp_path, "k2", k1=k1, k2=k2)))
    new = await after.encode(_payloads("new"))

    assert _values(await after.decode(old)) == [SECRET]
    assert new[0].metadata[KEY_ID_KEY] == b"k2"
    assert _values(await after.decode(new)) == ["new"]


async def test_a_retired_key_that_was_dropped_is_named_in_the_error(
    tmp_path: Path, k1: str, k2: str
) -> None:
    encoded = await EncryptionCodec(_keys("k1", k1=k1)).encode(_payloads(SECRET))
    only_k2 = EncryptionCodec(PayloadKeys.load(_key_file(tmp_path, "k2", k2=k2)))

    with pytest.raises(PayloadKeyError, match=r"encrypted with key 'k1'.*\(it has: k2\)"):
        await only_k2.decode(encoded)


async def test_the_workers_codec_explains_a_payload_it_cannot_decrypt_instead_of_failing(
    k1: str, k2: str
) -> None:
    """The SDK decodes a workflow task's payloads before workflow code runs: a codec that
    raises there fails the task on every retry. The worker's codec hands the workflow the
    reason instead, in a payload of its own encoding, and decodes every other payload."""
    written = await EncryptionCodec(_keys("k2", k2=k2)).encode(_payloads("unknown key", "ok"))
    worker = WorkerEncryptionCodec(_keys("k1", k1=k1, k2=k2))
    readable = (await worker.encode(_payloads("mine")))[0]
    altered = Payload()
    altered.CopyFrom(readable)
    altered.data = altered.data[:-1] + bytes([altered.data[-1] ^ 1])
    only_k1 = WorkerEncryptionCodec(_keys("k1", k1=k1))

    decoded = await only_k1.decode([written[0], altered, readable])
    assert [payload.metadata["encoding"] for payload in decoded[:2]] == [UNDECODABLE] * 2
    assert b"encrypted with key 'k2', which" in decoded[0].data
    assert b"failed authentication" in decoded[1].data
    assert _values(decoded[2:]) == ["mine"]


# Tampering


async def _one_encrypted(k1: str) -> tuple[EncryptionCodec, Payload]:
    codec = EncryptionCodec(_keys("k1", k1=k1))
    return codec, (await codec.encode(_payloads(SECRET)))[0]


@pytest.mark.parametrize("where", [0, NONCE_BYTES, -1])  # nonce, ciphertext, tag
async def test_a_flipped_bit_fails_authentication(k1: str, where: int) -> None:
    codec, payload = await _one_encrypted(k1)
    data = bytearray(payload.data)
    data[where] ^= 0x01
    payload.data = bytes(data)
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([payload])


async def test_a_truncated_payload_fails_authentication(k1: str) -> None:
    codec, payload = await _one_encrypted(k1)
    payload.data = payload.data[:5]
    with pytest.raises(PayloadDecryptionError):
        await codec.decode([payload])


async def test_a_changed_key_id_fails_authentication(k1: str) -> None:
    # Another key under the claimed id would not open it anyway; the same key under another
    # id must not either: the id is the ciphertext's associated data.
    codec = EncryptionCodec(_keys("k1", k1=k1, k9=k1))
    payload = (await codec.encode(_payloads(SECRET)))[0]
    payload.metadata[KEY_ID_KEY] = b"k9"
    with pytest.raises(PayloadDecryptionError, match="'k9'"):
        await codec.decode([payload])


async def test_another_key_under_the_same_id_fails_authentication(k1: str, k2: str) -> None:
    _, payload = await _one_encrypted(k1)
    impostor = EncryptionCodec(_keys("k1", k1=k2))
    with pytest.raises(PayloadDecryptionError, match="different key under that id"):
        await impostor.decode([payload])


# Key files


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "is not JSON"),
        ("[]", "exactly 'active' and 'keys'"),
        ('{"active": "k1", "keys": {}}', "at least one key"),
        ('{"active": "k1"}', "exactly 'active' and 'keys'"),
        ('{"active": "k1", "keys": {"k1": "@@@"}, "extra": 1}', "exactly 'active' and 'keys'"),
        ('{"active": "k1", "keys": {"k1": "not base64!"}}', "'k1' is not valid base64"),
        ('{"active": "k1", "keys": {"k1": 42}}', "must be a base64 string"),
        (
            json.dumps({"active": "k1", "keys": {"k1": base64.b64encode(b"x" * 16).decode()}}),
            "'k1' is 16 bytes; AES-256 needs 32",
        ),
        (
            json.dumps({"active": "k3", "keys": {"k1": A_KEY, "k2": A_KEY}}),
            r"active key 'k3' is not in 'keys' \(it has: k1, k2\)",
        ),
        (json.dumps({"active": None, "keys": {"k1": A_KEY}}), "active key None"),
        (json.dumps({"active": "a b", "keys": {"a b": A_KEY}}), "key id 'a b' must be"),
    ],
)
def test_a_bad_key_file_is_refused_with_a_clear_error(
    tmp_path: Path, document: str, message: str
) -> None:
    path = tmp_path / "keys.json"
    path.write_text(document)
    with pytest.raises(PayloadKeyError, match=message) as caught:
        PayloadKeys.load(path)
    assert str(path) in str(caught.value)


def test_a_missing_key_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PayloadKeyError, match=f"cannot read .*missing.json \\({KEY_FILE_ENV}\\)"):
        PayloadKeys.load(tmp_path / "missing.json")


def test_errors_and_descriptions_never_show_key_material(tmp_path: Path, k1: str) -> None:
    keys = PayloadKeys.load(_key_file(tmp_path, "k1", k1=k1))
    assert k1 not in keys.describe() and "active key k1" in keys.describe()
    with pytest.raises(PayloadKeyError) as caught:
        PayloadKeys.parse(json.dumps({"active": "k2", "keys": {"k1": k1}}))
    assert k1 not in str(caught.value)


# The data converter each process gets


def test_no_key_file_means_the_plain_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    assert data_converter() is DATA_CONVERTER
    monkeypatch.setenv(KEY_FILE_ENV, "")
    assert data_converter() is DATA_CONVERTER


async def test_the_key_file_setting_turns_encryption_on(
    tmp_path: Path, k1: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_FILE_ENV, str(_key_file(tmp_path, "k1", k1=k1)))
    converter = data_converter()
    encoded = await converter.encode([{"value": SECRET}])
    assert encoded[0].metadata["encoding"] == ENCODING
    assert await converter.decode(encoded, [dict]) == [{"value": SECRET}]


def test_an_unusable_key_file_fails_when_the_converter_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(PayloadKeyError, match="nope.json"):
        data_converter()


async def _encoded_failure(error: BaseException, k1: str) -> temporalio.api.failure.v1.Failure:
    converter = encrypted_data_converter(_keys("k1", k1=k1))
    try:
        raise error  # a raised exception carries the traceback a worker would send
    except BaseException as raised:
        failure = temporalio.api.failure.v1.Failure()
        await converter.encode_failure(raised, failure)
        return failure


async def test_failure_messages_are_encrypted_and_decode_for_those_with_the_key(k1: str) -> None:
    failure = await _encoded_failure(ApplicationError(f"bad input: {SECRET}"), k1)

    assert failure.message == "Encoded failure"
    assert SECRET.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await encrypted_data_converter(_keys("k1", k1=k1)).decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == f"bad input: {SECRET}"


async def _encoded_attributes(failure: temporalio.api.failure.v1.Failure, k1: str) -> object:
    plain = await EncryptionCodec(_keys("k1", k1=k1)).decode([failure.encoded_attributes])
    return _values(plain)[0]


async def test_a_gate_refusal_stays_readable_and_has_no_stack_trace(k1: str) -> None:
    # The Web UI's Update dialog shows a rejected Update's message without decoding it.
    failure = await _encoded_failure(GateRefusal("'mallory' may not decide"), k1)
    assert failure.message == "'mallory' may not decide"
    assert failure.stack_trace == ""
    assert not failure.HasField("encoded_attributes")
    assert failure.application_failure_info.type == "GateRefusal"


async def test_other_encrypted_failures_keep_their_stack_trace(k1: str) -> None:
    failure = await _encoded_failure(RuntimeError("boom"), k1)
    attributes = await _encoded_attributes(failure, k1)
    assert isinstance(attributes, dict)
    assert attributes["message"] == "boom"
    assert "test_codec.py" in attributes["stack_trace"]
