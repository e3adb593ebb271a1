"""`python worker.py --check` as a container runs it: a process of its own with the worker's
environment, timed from its start to its exit."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ecs_canary.codec import KEY_FILE_ENV
from ecs_canary.health_check import CHECK_FLAG
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.temporal import CLUSTER_SETTINGS
from tests.helpers.processes import ROOT

# The worker's files: the check reads them only when set.
FILE_SETTINGS = (POLICY_FILE_ENV, KEY_FILE_ENV)
# Every way boto3 may find credentials without a network call, and those that make one (the
# container and web identity providers); the instance metadata service is switched off apart.
CREDENTIAL_SETTINGS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@dataclass(frozen=True)
class Answer:
    """How the check ended: its exit code, every line it wrote (stdout, then stderr), and how
    long it took."""

    code: int
    lines: list[str]
    seconds: float


def worker_environment(address: str, **settings: str) -> dict[str, str]:
    """This test process's environment (the emulator's endpoint and credentials) for a worker
    of the server at `address`: no developer's Temporal profile, no worker files unless given."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in CLUSTER_SETTINGS and name not in FILE_SETTINGS
    }
    return {**env, "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default", **settings}


def without_credentials(env: Mapping[str, str], nowhere: str) -> dict[str, str]:
    """`env` where boto3 finds no credentials: none in the environment, credential and config
    files at `nowhere` (a path that does not exist), no instance metadata service asked."""
    kept = {name: value for name, value in env.items() if name not in CREDENTIAL_SETTINGS}
    return {
        **kept,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_CONFIG_FILE": nowhere,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


async def run_check(
    env: Mapping[str, str], command: Sequence[str] = (sys.executable, "worker.py", CHECK_FLAG)
) -> Answer:
    """Run the check (or `command`, a container's) from the repository root, as the image's
    working directory holds worker.py."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=ROOT,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    seconds = time.monotonic() - started
    lines = (out.decode() + err.decode()).splitlines()
    return Answer(process.returncode or 0, lines, seconds)
