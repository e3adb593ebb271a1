"""`python worker.py --check`: whether this worker could do its work right now, for a
container's health check (the Dockerfile's HEALTHCHECK, deploy/worker.cfn.yaml's healthCheck).

ECS restarts an unhealthy container only if the container can say it is unhealthy, and a
worker that cannot reach its namespace, or has no AWS credentials, still looks alive from
outside: it polls, retries and logs. The check asks what the worker needs, with the worker's
own environment: the files it reads at start (the platform policy, the payload key file) parse,
its AWS credentials resolve, and its Temporal namespace answers. It exits 0 when all do, else
1 with one line saying what is wrong. The remote questions are bounded so that the answer comes
within 10 s of the process's start: a health check that hangs is killed by its timeout with no
reason given.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import RPCError

from ecs_canary.codec import PayloadKeyError, PayloadKeys
from ecs_canary.policy import PolicyError, read_policy
from ecs_canary.temporal import connect

CHECK_FLAG = "--check"
# The remote questions (Temporal, AWS credentials), asked together, end this long after the
# process started: the interpreter's start and the worker's imports (about 2 s, more on a
# starved machine) count too. Each gets at least MIN_ANSWER_SECONDS.
DEADLINE_SECONDS = 8.0
MIN_ANSWER_SECONDS = 1.0
PREFIX = "worker --check"


def seconds_since_start() -> float:
    """How long this process has run, from its start time in /proc (Linux, as in the
    container); 0 where there is no /proc."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - started)


def answer_seconds() -> float:
    """How long the remote questions may take from now."""
    return max(MIN_ANSWER_SECONDS, DEADLINE_SECONDS - seconds_since_start())


def one_line(text: str) -> str:
    return " ".join(text.split())


def file_problems() -> list[str]:
    """What is wrong with the files the worker reads at start (each one only when set)."""
    problems = []
    try:
        read_policy()
    except PolicyError as err:
        problems.append(str(err))
    try:
        PayloadKeys.from_env()
    except PayloadKeyError as err:
        problems.append(str(err))
    return problems


async def temporal_problem(seconds: float) -> str | None:
    """Whether the worker's namespace answers, through the worker's own connection settings."""
    try:
        client = await connect(worker=True)
    except Exception as err:  # whatever stops the connection is the answer
        return f"cannot connect to Temporal: {err}"
    address = client.service_client.config.target_host
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace),
            timeout=timedelta(seconds=seconds),
        )
    except RPCError as err:
        return f"Temporal namespace {client.namespace} at {address} does not answer: {err}"
    return None


def credentials_problem() -> str | None:
    """Whether boto3's credential chain (the one the worker's clients use) finds credentials
    and can load them now: a task role's are fetched from the ECS agent here."""
    try:
        credentials = boto3.session.Session().get_credentials()
        if credentials is None:
            return (
                "no AWS credentials found (environment, AWS_PROFILE and ~/.aws, SSO, "
                "container or instance role)"
            )
        credentials.get_frozen_credentials()
    except (BotoCoreError, ClientError) as err:
        return f"AWS credentials do not resolve: {err}"
    return None


async def within(what: str, seconds: float, answer: Awaitable[str | None]) -> str | None:
    try:
        return await asyncio.wait_for(answer, seconds)
    except TimeoutError:
        return f"{what} did not answer within {seconds:.1f} s"


async def remote_problems() -> list[str]:
    """Temporal and the AWS credentials, asked together. botocore's resolution blocks, so it
    runs on a thread of its own that the process does not wait for if it hangs."""
    seconds = answer_seconds()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="credentials")
    resolving = asyncio.get_running_loop().run_in_executor(executor, credentials_problem)
    try:
        answers = await asyncio.gather(
            within("Temporal", seconds, temporal_problem(seconds)),
            within("AWS credential resolution", seconds, resolving),
        )
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return [problem for problem in answers if problem is not None]


def problems() -> list[str]:
    """What is wrong: the files, then (when they parse) the remote questions; the worker's
    connection reads the key file again, so a bad one would be reported twice."""
    return file_problems() or asyncio.run(remote_problems())


def check() -> None:
    """The command: one line on standard output when healthy; otherwise SystemExit with one
    line (exit code 1, through ecs_canary.process_exit)."""
    found = problems()
    if found:
        raise SystemExit(f"{PREFIX}: " + one_line("; ".join(found)))
    print(f"{PREFIX}: ok")

