"""Bad input gets a clear error and changes nothing, through the starter and through the
Temporal CLI (which bypasses the starter: the workflow itself must fail the run at once)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import cli_start, temporal_cli

ROOT = Path(__file__).resolve().parent.parent


def _set(path: str, value: Any) -> Callable[[dict], Any]:
    def mutate(request: dict) -> dict:
        *parents, leaf = path.split(".")
        node = request
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
        return request

    return mutate


_DELETE = object()

BAD_INPUTS = {
    "unknown field": (_set("canry", {"desired_count": 1}), "canry"),
    "unknown task definition field": (
        _set("task_definition.containerDefinitions.0.imag", "nginx"),
        "imag",
    ),
    "missing cluster": (_set("cluster", _DELETE), "cluster"),
    "missing service name": (_set("service_name", _DELETE), "service_name"),
    "missing family": (_set("task_definition.family", _DELETE), "family"),
    "missing image": (_set("task_definition.containerDefinitions.0.image", _DELETE), "image"),
    "desired count 0": (_set("service_definition.desiredCount", 0), "desiredCount"),
    "canary count 0": (_set("canary.desired_count", 0), "desired_count"),
    "invalid service name": (_set("service_name", "my app"), "letters, digits"),
    "service name too long": (_set("service_name", "a" * 250), "longer than 255"),
    "gate timeout 0": (_set("verification.timeout_seconds", 0), "timeout_seconds"),
    "stage timeout negative": (_set("stage_timeouts.canary_deploy", -5), "canary_deploy"),
    "serviceName in service definition": (
        _set("service_definition.serviceName", "other"),
        "serviceName",
    ),
}


def _bad_request(requests, case: str) -> dict:
    mutate, _ = BAD_INPUTS[case]
    return mutate(requests.raw())


def _ecs_inventory(ecs) -> tuple[list[str], list[str]]:
    return (
        sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        sorted(ecs.list_services(cluster="ecs-canary")["serviceArns"]),
    )


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_the_cli_start_fails_the_run_with_the_validation_error(
    case, client, worker, task_queue, requests, ecs, emulator, tmp_path, started
):
    before = _ecs_inventory(ecs)
    emulator.admin.reset_calls()
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(_bad_request(requests, case)))
    workflow_id = f"bad-input-{task_queue}"
    code, _, err = await cli_start(
        client, task_queue, workflow_id, "--input-file", str(request_file)
    )
    assert code == 0, err
    handle = client.get_workflow_handle(workflow_id)
    started.append(handle)
    code, out, err = await temporal_cli(
        client, "workflow", "result", "--workflow-id", workflow_id, "--output", "json"
    )
    assert code != 0
    description = await handle.describe()
    assert description.status.name == "FAILED"
    failure = json.dumps(json.loads(out)) if out.strip().startswith("{") else out + err
    assert "Invalid deployment request" in failure and BAD_INPUTS[case][1] in failure
    assert emulator.admin.calls()["total"] == 0
    assert _ecs_inventory(ecs) == before


async def test_a_payload_that_is_not_an_object_fails_the_run(
    client, worker, task_queue, tmp_path, started
):
    workflow_id = f"bad-input-{task_queue}"
    code, _, err = await cli_start(
        client, task_queue, workflow_id, "--input", '"deploy myapp please"'
    )
    assert code == 0, err
    handle = client.get_workflow_handle(workflow_id)
    started.append(handle)
    code, out, err = await temporal_cli(client, "workflow", "result", "--workflow-id", workflow_id)
    assert code != 0 and "Invalid deployment request" in out + err


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_the_starter_refuses_before_starting(case, client, requests, ecs, emulator, tmp_path):
    before = _ecs_inventory(ecs)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(_bad_request(requests, case)))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        "deploy",
        str(request_file),
        cwd=ROOT,
        env={**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 2
    message = err.decode().strip()
    assert len(message.splitlines()) == 1 and BAD_INPUTS[case][1] in message
    assert _ecs_inventory(ecs) == before
    listed = [
        w
        async for w in client.list_workflows(
            "WorkflowType='EcsCanaryDeployment' AND ExecutionStatus='Running'"
        )
    ]
    assert all("ecs-canary/ecs-canary/" not in w.id for w in listed)
