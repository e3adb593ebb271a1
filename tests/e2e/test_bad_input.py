"""Bad input gets a clear error and changes nothing, through the starter and through the
Temporal CLI (which bypasses the starter: the workflow itself must fail the run at once)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ecs_canary.names import WORKFLOW_TYPE, workflow_id_for
from tests.helpers import (
    CLUSTER,
    assert_failed_at_once,
    cli_start,
    inventory,
    request_file,
    temporal_cli,
)


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


async def _cli_start_fails_at_once(client, task_queue, runs, *input_args: str) -> str:
    """Start a run with the temporal CLI; it must fail in its first workflow task with
    InvalidRequest. Returns what `temporal workflow result` printed."""
    workflow_id = f"bad-input-{task_queue}"
    started = await cli_start(client, task_queue, workflow_id, *input_args)
    assert started.code == 0, started.err
    handle = await runs.track(workflow_id)
    result = await temporal_cli(
        client, "workflow", "result", "--workflow-id", workflow_id, "--output", "json"
    )
    assert result.code != 0
    assert (await handle.describe()).status.name == "FAILED"
    message = await assert_failed_at_once(handle, "InvalidRequest")
    assert message.startswith("Invalid deployment request")
    out = result.out
    return json.dumps(json.loads(out)) if out.strip().startswith("{") else out + result.err


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_the_cli_start_fails_the_run_with_the_validation_error(
    case, client, worker, task_queue, requests, ecs, emulator, tmp_path, runs
):
    before = inventory(ecs)
    emulator.admin.reset_calls()
    request = request_file(tmp_path, _bad_request(requests, case))
    shown = await _cli_start_fails_at_once(client, task_queue, runs, "--input-file", request)
    assert "Invalid deployment request" in shown and BAD_INPUTS[case][1] in shown
    assert emulator.admin.calls()["total"] == 0
    assert inventory(ecs) == before


async def test_a_payload_that_is_not_an_object_fails_the_run(
    client, worker, task_queue, emulator, runs
):
    emulator.admin.reset_calls()
    shown = await _cli_start_fails_at_once(
        client, task_queue, runs, "--input", '"deploy myapp please"'
    )
    assert "Invalid deployment request" in shown
    assert emulator.admin.calls()["total"] == 0


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_the_starter_refuses_before_starting(case, client, starter, requests, ecs):
    before = inventory(ecs)
    done = await starter.run("deploy", starter.request_file(_bad_request(requests, case)))
    assert done.code == 2
    message = done.err.strip()
    assert len(message.splitlines()) == 1 and BAD_INPUTS[case][1] in message
    assert inventory(ecs) == before
    running = f"WorkflowType='{WORKFLOW_TYPE}' AND ExecutionStatus='Running'"
    listed = [w async for w in client.list_workflows(running)]
    any_service_here = workflow_id_for(CLUSTER, "")
    assert all(not w.id.startswith(any_service_here) for w in listed)
