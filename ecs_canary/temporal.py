"""How every process reaches Temporal: Temporal's own environment configuration (address,
namespace, TLS, API key, profiles in temporal.toml) and the project's data converter, which
encrypts payloads when `ECS_CANARY_PAYLOAD_KEY_FILE` is set (ecs_canary/codec.py)."""

from __future__ import annotations

import dataclasses
import os

import temporalio.api.failure.v1
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.envconfig import ClientConfigProfile

from ecs_canary.codec import EncryptionCodec, PayloadKeys, WorkerEncryptionCodec
from ecs_canary.gate import GateRefusal


class RefusalFailureConverter(DefaultFailureConverter):
    """A refused decision is an answer to a person, not a crash: its failure carries the
    reason without a stack trace, which the Web UI and the CLI would show under it (with the
    worker's file paths).

    The reason also stays in the clear when other failures are encrypted
    (EncryptedFailureConverter): the Web UI's Update dialog shows a rejected Update's message
    as it is, without asking the codec server, so an encrypted refusal would read
    "Encoded failure" to the approver. A refusal holds no request data (who may decide, what
    the gate is waiting for), and a rejected Update never reaches the history."""

    def to_failure(
        self,
        exception: BaseException,
        payload_converter: PayloadConverter,
        failure: temporalio.api.failure.v1.Failure,
    ) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, GateRefusal):
            failure.ClearField("encoded_attributes")
            failure.message = str(exception)
            failure.stack_trace = ""


class EncryptedFailureConverter(RefusalFailureConverter):
    """With payload encryption, a failure's message and stack trace travel as an encoded
    payload, which the codec encrypts: a message may quote the request (an invalid request's
    validation error echoes its input, environment values included; an AWS error may echo a
    value), and the history must not hold what the encrypted payloads hide. The history then
    reads "Encoded failure"; the starter, `temporal workflow show --detailed --codec-endpoint`
    and the Web UI with a codec endpoint (the run's Result, the event's details) show the text.
    Gate refusals stay readable (see RefusalFailureConverter)."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


# Pydantic models as payloads; gate refusals without stack traces; no encryption. Tests, the
# demo and the benchmarks use this one; the worker and the starter use `data_converter()`.
DATA_CONVERTER = dataclasses.replace(
    pydantic_data_converter, failure_converter_class=RefusalFailureConverter
)


def encrypted_data_converter(keys: PayloadKeys, worker: bool = False) -> DataConverter:
    """DATA_CONVERTER with every payload (failure messages included) encrypted under `keys`;
    the worker's never fails on a payload it cannot decrypt (WorkerEncryptionCodec)."""
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=WorkerEncryptionCodec(keys) if worker else EncryptionCodec(keys),
        failure_converter_class=EncryptedFailureConverter,
    )


def data_converter(worker: bool = False) -> DataConverter:
    """The converter for this process's environment: encrypted when ECS_CANARY_PAYLOAD_KEY_FILE
    names a key file (PayloadKeyError if it is unusable), DATA_CONVERTER otherwise."""
    keys = PayloadKeys.from_env()
    return DATA_CONVERTER if keys is None else encrypted_data_converter(keys, worker)


DEFAULT_ADDRESS = "localhost:7233"
# Settings that point a client at a particular Temporal cluster; tools that start their own
# local server (the demo, the benchmarks) drop them so a developer's profile cannot leak in.
CLUSTER_SETTINGS = frozenset(
    {
        "TEMPORAL_PROFILE",
        "TEMPORAL_CONFIG_FILE",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    }
)


async def connect(worker: bool = False) -> Client:
    """A client for this process's environment (`worker`: the worker's converter)."""
    converter = data_converter(worker)  # a bad key file fails before any connection attempt
    profile = ClientConfigProfile.load(profile=os.environ.get("TEMPORAL_PROFILE"))
    config = profile.to_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return await Client.connect(**config, data_converter=converter)
