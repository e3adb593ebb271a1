"""`python worker.py --check`: whether this worker could do its work right now, for a
container's health check (the Dockerfile's HEALTHCHECK, deploy/worker.cfn.yaml's healthCheck).

ECS restarts an unhealthy container only if the container can say it is unhealthy, and a
worker that cannot reach its namespace, or has no AWS credentials, still looks alive from
outside: it polls, retries and logs. The check asks what the worker needs, with the worker's
own environment: the files it reads at start (the platform policy, the payload key file) parse,
its AWS credentials resolve, and its Temporal namespace answers. It exits 0 when all do, else
1 with one line saying what is wrong. Each remote question is bounded, so the answer comes
within 10 s: a health check that hangs is killed by its timeout with no reason given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import RPCError

from ecs_canary.codec import PayloadKeyError, PayloadKeys
from ecs_canary.policy import PolicyError, read_policy
from ecs_canary.temporal import connect

CHECK_FLAG = "--check"
# How long each remote question (Temporal, AWS credentials) may take. They are asked at once,
# so with the interpreter's start (about 2 s, importing the worker) the check ends within 10 s.
ANSWER_SECONDS = 5.0
PREFIX = "worker --check"


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


async def temporal_problem() -> str | None:
    """Whether the worker's namespace answers, through the worker's own connection settings."""
    try:
        client = await connect(worker=True)
    except Exception as err:  # whatever stops the connection is the answer
        return f"cannot connect to Temporal: {err}"
    address = client.service_client.config.target_host
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace),
            timeout=timedelta(seconds=ANSWER_SECONDS),
        )
    except RPCError as err:
        return f"Temporal at {address} does not answer for namespace {client.namespace}: {err}"
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


async def within(what: str, answer: Awaitable[str | None]) -> str | None:
    try:
        return await asyncio.wait_for(answer, ANSWER_SECONDS)
    except TimeoutError:
        return f"{what} did not answer within {ANSWER_SECONDS:g} s"


async def remote_problems() -> list[str]:
    """Temporal and the AWS credentials, asked together. botocore's resolution blocks, so it
    runs on a thread of its own that the process does not wait for if it hangs."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="credentials")
    resolving = asyncio.get_running_loop().run_in_executor(executor, credentials_problem)
    try:
        answers = await asyncio.gather(
            within("Temporal", temporal_problem()),
            within("AWS credential resolution", resolving),
        )
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return [problem for problem in answers if problem is not None]


def problems() -> list[str]:
    """Everything wrong, in one pass: the files first, as the worker's connection reads the
    key file again (its error would come twice); then the remote questions."""
    return file_problems() or asyncio.run(remote_problems())


def check() -> None:
    """The command: one line on standard output when healthy; otherwise SystemExit with one
    line (exit code 1, through ecs_canary.process_exit)."""
    found = problems()
    if found:
        raise SystemExit(f"{PREFIX}: " + one_line("; ".join(found)))
    print(f"{PREFIX}: ok")

