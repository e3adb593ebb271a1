"""`python worker.py --check`, the worker container's health check, as a process of its own
against the real Temporal dev server and the ECS emulator's credentials: 0 when the worker
could work, else 1 with one line saying what is wrong, each within 10 s."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from ecs_canary.codec import KEY_FILE_ENV, new_key
from ecs_canary.policy import POLICY_FILE_ENV
from tests.helpers import free_port, run_check, without_credentials, worker_environment

# What a container health check may take (the bound).
HEALTHY_WITHIN_SECONDS = 15.0
WITHIN_SECONDS = 10.0
PREFIX = "worker --check: "
KEY_FILE = {"active": "k1", "keys": {"k1": new_key()}}


@pytest.fixture
def address(temporal_env: WorkflowEnvironment, emulator: Any) -> str:
    """The dev server's address; with the emulator's credentials in this process's env."""
    return temporal_env.client.service_client.config.target_host


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections into its backlog and never answers them: a Temporal
    frontend behind a black hole."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@dataclass(frozen=True)
class Broken:
    env: dict[str, str]
    reason: str  # what the check's line says


def _file(tmp_path: Path, name: str, document: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


async def test_a_worker_that_could_work_answers_ok(address: str, tmp_path: Path) -> None:
    # The worker's own metrics port is held (by the running worker, in a container): the check
    # must not try to serve metrics itself.
    with socket.socket() as metrics:
        metrics.bind(("127.0.0.1", 0))
        metrics.listen(1)
        env = worker_environment(
            address,
            ECS_CANARY_METRICS_PORT=str(metrics.getsockname()[1]),
            **{
                POLICY_FILE_ENV: _file(tmp_path, "policy.json", {"require_approval": True}),
                KEY_FILE_ENV: _file(tmp_path, "keys.json", KEY_FILE),
            },
        )
        answer = await run_check(env)
    assert (answer.code, answer.lines) == (0, [PREFIX + "ok"])
    # The 10 s bound is the for saying what is wrong; a healthy answer must come within
    # the container health check's timeout (15 s; 10.6 s seen beside the whole suite).
    assert answer.seconds < HEALTHY_WITHIN_SECONDS


def _broken(case: str, env: dict[str, str], tmp_path: Path, silent_port: int) -> Broken:
    """The worker's environment with one thing wrong, and what the check must say about it."""
    if case == "unreachable Temporal":
        port = free_port()
        return Broken({**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}, f"127.0.0.1:{port}")
    if case == "Temporal that never answers":
        waited = "Temporal did not answer within"
        return Broken({**env, "TEMPORAL_ADDRESS": f"127.0.0.1:{silent_port}"}, waited)
    if case == "unknown namespace":
        return Broken({**env, "TEMPORAL_NAMESPACE": "nowhere"}, "namespace nowhere at ")
    if case == "bad policy file":
        path = _file(tmp_path, "policy.json", {"min_approvals": 0})
        return Broken({**env, POLICY_FILE_ENV: path}, f"the policy file {path}")
    if case == "bad key file":
        path = _file(tmp_path, "keys.json", {"active": "k9", "keys": {"k1": new_key()}})
        return Broken({**env, KEY_FILE_ENV: path}, "active key 'k9' is not in 'keys'")
    assert case == "no AWS credentials"
    nowhere = str(tmp_path / "nowhere")
    return Broken(without_credentials(env, nowhere), "no AWS credentials found")


@pytest.mark.parametrize(
    "case",
    [
        "unreachable Temporal",
        "Temporal that never answers",
        "unknown namespace",
        "bad policy file",
        "bad key file",
        "no AWS credentials",
    ],
)
async def test_a_worker_that_could_not_work_says_why_in_one_line(
    address: str, tmp_path: Path, silent_port: int, case: str
) -> None:
    broken = _broken(case, worker_environment(address), tmp_path, silent_port)
    answer = await run_check(broken.env)
    assert answer.code == 1, answer.lines
    (line,) = answer.lines
    assert line.startswith(PREFIX) and broken.reason in line, line
    assert answer.seconds < WITHIN_SECONDS
