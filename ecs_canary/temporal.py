"""How every process reaches Temporal: Temporal's own environment configuration (address,
namespace, TLS, API key, profiles in temporal.toml) and the project's data converter."""

from __future__ import annotations

import dataclasses
import os

import temporalio.api.failure.v1
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverter, PayloadConverter
from temporalio.envconfig import ClientConfigProfile

from ecs_canary.gate import GateRefusal


class RefusalFailureConverter(DefaultFailureConverter):
    """A refused decision is an answer to a person, not a crash: its failure carries the
    reason without a stack trace, which the Web UI and the CLI would show under it (with the
    worker's file paths)."""

    def to_failure(
        self,
        exception: BaseException,
        payload_converter: PayloadConverter,
        failure: temporalio.api.failure.v1.Failure,
    ) -> None:
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, GateRefusal):
            failure.stack_trace = ""


# Pydantic models as payloads; gate refusals without stack traces. Workers, clients and tests
# all use this one.
DATA_CONVERTER = dataclasses.replace(
    pydantic_data_converter, failure_converter_class=RefusalFailureConverter
)

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


async def connect() -> Client:
    profile = ClientConfigProfile.load(profile=os.environ.get("TEMPORAL_PROFILE"))
    config = profile.to_client_connect_config()
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return await Client.connect(**config, data_converter=DATA_CONVERTER)
