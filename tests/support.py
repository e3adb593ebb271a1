"""Helpers for tests: deployment requests for the emulator's account, waiting on conditions,
and capturing the log lines a deployment writes."""

from __future__ import annotations

import asyncio
import copy
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from ecs_canary.models import (
    CreateServiceInput,
    DeploymentRequest,
    DeploymentResult,
    DeploymentStatus,
    Stage,
    WaitSteadyInput,
)
from ecs_canary.names import WORKFLOW_TYPE


class RequestFactory:
    """Deployment requests that fit the emulator's seeded VPC, with test-sized timings."""

    def __init__(self, seed: dict[str, Any]) -> None:
        self.seed = seed

    def raw(
        self, service: str = "myapp", image: str = "nginx:1.27", desired: int = 3, **extra: Any
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "cluster": self.seed["cluster"],
            "service_name": service,
            "task_definition": {
                "family": f"{service}-task",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [
                    {
                        "name": "web",
                        "image": image,
                        "essential": True,
                        "portMappings": [{"containerPort": 80}],
                    }
                ],
            },
            "service_definition": {
                "desiredCount": desired,
                "launchType": "FARGATE",
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": self.seed["subnets"],
                        "securityGroups": [self.seed["security_group"]],
                        "assignPublicIp": "DISABLED",
                    }
                },
            },
            "poll_interval_seconds": 0.1,
            "verification": {"timeout_seconds": 600},
            "stage_timeouts": {
                "canary_deploy": 60,
                "canary_delete": 60,
                "rolling_deploy": 90,
                "rollback": 90,
            },
        }
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(request.get(key), dict):
                request[key] = {**request[key], **value}
            else:
                request[key] = value
        return copy.deepcopy(request)

    def model(self, **kwargs: Any) -> DeploymentRequest:
        return DeploymentRequest.model_validate(self.raw(**kwargs))


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float = 30, every: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


async def start(
    client: Client,
    task_queue: str,
    request: dict[str, Any] | DeploymentRequest,
    workflow_id: str | None = None,
) -> WorkflowHandle:
    body = request.model_dump(mode="json") if isinstance(request, DeploymentRequest) else request
    wf_id = workflow_id or f"ecs-canary/{body['cluster']}/{body['service_name']}"
    return await client.start_workflow(
        WORKFLOW_TYPE, body, id=wf_id, task_queue=task_queue, result_type=DeploymentResult
    )


async def status(handle: WorkflowHandle) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def wait_for_stage(
    handle: WorkflowHandle, stage: str, gate_open: bool | None = None, timeout: float = 60
) -> DeploymentStatus:
    async def reached() -> bool:
        current = await status(handle)
        return current.stage.value == stage and (
            gate_open is None or current.gate_open == gate_open
        )

    await wait_until(reached, timeout)
    return await status(handle)


class LogCapture(logging.Handler):
    """Collects the event text of every log record (structlog's and stdlib's)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            entry = dict(record.msg)
        else:
            entry = {
                "event": record.getMessage(),
                **{
                    k: v
                    for k, v in vars(record).items()
                    if k in ("cluster", "service", "stage", "workflow_id")
                },
            }
        self.records.append(entry)

    def attach(self) -> None:
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)

    def lines(self) -> list[str]:
        return [str(r.get("event", "")) for r in self.records]


def existing_service(
    ecs: Any,
    requests: RequestFactory,
    service: str = "myapp",
    image: str = "nginx:1.26",
    desired: int = 2,
) -> str:
    """Deploy `service` the plain way (as an earlier release would have) and wait until stable;
    returns its task definition ARN."""
    raw = requests.raw(service=service, image=image, desired=desired)
    arn = ecs.register_task_definition(**raw["task_definition"])["taskDefinition"][
        "taskDefinitionArn"
    ]
    ecs.create_service(
        cluster=raw["cluster"], serviceName=service, taskDefinition=arn, **raw["service_definition"]
    )
    ecs.get_waiter("services_stable").wait(
        cluster=raw["cluster"], services=[service], WaiterConfig={"Delay": 0.1, "MaxAttempts": 600}
    )
    return arn


def describe(ecs: Any, cluster: str, service: str) -> dict[str, Any] | None:
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    return found[0] if found else None


def in_order(lines: list[str], expected: list[str]) -> bool:
    """True when each expected prefix appears in `lines`, in this order."""
    position = 0
    for prefix in expected:
        while position < len(lines) and not lines[position].startswith(prefix):
            position += 1
        if position == len(lines):
            return False
        position += 1
    return True


async def temporal_cli(client: Client, *args: str) -> tuple[int, str, str]:
    """Run the real `temporal` CLI against the test server (asynchronously, so the in-process
    worker keeps running while it waits)."""
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "temporal"),
        *args,
        "--address",
        client.service_client.config.target_host,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def cli_start(
    client: Client, task_queue: str, workflow_id: str, *input_args: str
) -> tuple[int, str, str]:
    """`temporal workflow start` of a deployment, as a platform engineer types it; the input
    is `--input-file F` or `--input JSON`."""
    return await temporal_cli(
        client,
        "workflow",
        "start",
        "--task-queue",
        task_queue,
        "--type",
        WORKFLOW_TYPE,
        "--workflow-id",
        workflow_id,
        *input_args,
    )


def canary_create_input(requests, ecs, image: str = "nginx:1.27") -> CreateServiceInput:
    """The create_service input of a canary on a freshly registered revision."""
    raw = requests.raw(image=image)
    arn = ecs.register_task_definition(**raw["task_definition"])["taskDefinition"][
        "taskDefinitionArn"
    ]
    return CreateServiceInput(
        region="us-east-1",
        cluster="ecs-canary",
        service="myappCanary",
        stage=Stage.CANARY_DEPLOY,
        task_definition_arn=arn,
        service_definition=raw["service_definition"],
        desired_count=1,
        tags={},
    )


def canary_wait_input(create: CreateServiceInput, **timing) -> WaitSteadyInput:
    """The wait_for_steady_state input for that canary (poll every 0.1 s unless given)."""
    timing.setdefault("poll_interval_seconds", 0.1)
    return WaitSteadyInput(
        region=create.region,
        cluster=create.cluster,
        service=create.service,
        stage=create.stage,
        task_definition_arn=create.task_definition_arn,
        max_failed_tasks=2,
        **timing,
    )
