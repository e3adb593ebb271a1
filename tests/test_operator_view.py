"""What operators see: the run's summary in the Web UI's own HTTP API and the CLI, activity
and timer summaries, search attributes that find runs waiting at the gate, JSON log lines."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import urllib.parse
import urllib.request

from ecs_canary.models import DeploymentResult
from tests.processes import ROOT, spawn_worker, stop
from tests.support import (
    existing_service,
    temporal_cli,
    wait_for_stage,
    wait_until,
)


def _payload_text(payload: dict) -> str:
    return json.loads(base64.b64decode(payload["data"]))


async def _starter(client, task_queue: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "starter.py",
        *args,
        cwd=ROOT,
        env={
            **os.environ,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": task_queue,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def test_the_web_ui_and_cli_show_what_the_run_is(
    client, worker, task_queue, requests, ecs, ui_port, tmp_path, started
):
    existing_service(ecs, requests)
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(requests.raw()))
    code, out, err = await _starter(client, task_queue, "deploy", str(request_file))
    assert code == 0, err
    handle = client.get_workflow_handle("ecs-canary/ecs-canary/myapp", result_type=DeploymentResult)
    started.append(handle)
    await wait_for_stage(handle, "verification", gate_open=True)

    quoted = urllib.parse.quote(handle.id, safe="")
    url = f"http://127.0.0.1:{ui_port}/api/v1/namespaces/default/workflows/{quoted}"
    body = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(url).read()))
    metadata = body["executionConfig"]["userMetadata"]
    assert _payload_text(metadata["summary"]).startswith("Deploy myapp on ecs-canary")
    assert "nginx:1.27" in _payload_text(metadata["details"])

    code, out, err = await temporal_cli(client, "workflow", "describe", "--workflow-id", handle.id)
    assert code == 0 and "Deploy myapp on ecs-canary" in out
    code, out, err = await temporal_cli(
        client, "workflow", "show", "--workflow-id", handle.id, "--detailed"
    )
    assert code == 0, err
    for summary in (
        "Register task definition myapp-task",
        "Create service myappCanary (desired 1)",
        "Wait for myappCanary to reach steady state",
        "Gate: wait for approval (10m)",
    ):
        assert summary in out, summary
    details = (await handle.describe()).raw_description.workflow_extended_info
    assert details is not None

    await handle.signal("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"


async def test_the_list_query_finds_runs_waiting_at_the_gate(
    client, worker, task_queue, requests, ecs, deploy
):
    existing_service(ecs, requests)
    existing_service(ecs, requests, service="billing")
    done = await deploy(requests.raw(service="billing", verification={"timeout_seconds": 1}))
    assert (await done.result()).outcome == "rejected"
    waiting = await deploy(requests.raw())
    await wait_for_stage(waiting, "verification", gate_open=True)

    query = "DeploymentStage='verification' AND ExecutionStatus='Running'"

    async def listed() -> bool:
        ids = [w.id async for w in client.list_workflows(query)]
        return waiting.id in ids and done.id not in ids

    try:
        await wait_until(listed, timeout=30)
    except AssertionError:
        every = [(w.id, w.status, w.search_attributes) async for w in client.list_workflows()]
        raise AssertionError(every) from None
    code, out, err = await temporal_cli(
        client,
        "workflow",
        "list",
        "--query",
        "EcsService='myapp' AND DeploymentStage='verification'",
    )
    assert code == 0 and waiting.id in out
    code, out, err = await _starter(client, task_queue, "pending")
    assert code == 0 and "myapp" in out and "billing" not in out
    await waiting.signal("reject", {"by": "alice"})
    assert (await waiting.result()).outcome == "rejected"


async def test_worker_logs_are_json_lines_with_their_context(
    client, task_queue, requests, ecs, tmp_path, deploy
):
    existing_service(ecs, requests)
    log_file = tmp_path / "worker.log"
    worker = spawn_worker(client.service_client.config.target_host, task_queue, log_file)
    try:
        handle = await deploy(
            requests.raw(verification={"timeout_seconds": 1, "on_timeout": "approve"})
        )
        result = await handle.result()
    finally:
        stop(worker)
    assert result.outcome == "succeeded"

    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    activity_lines = [line for line in lines if line.get("logger") == "ecs_canary.activities"]
    assert activity_lines
    for line in activity_lines:
        for key in ("cluster", "service", "stage", "workflow_id", "run_id", "activity", "attempt"):
            assert key in line, (key, line)
        assert line["timestamp"].endswith("Z")
    workflow_lines = [line for line in lines if line.get("event") == "Deployment Successful."]
    assert len(workflow_lines) == 1
    assert workflow_lines[0]["service"] == "myapp" and workflow_lines[0]["workflow_id"] == handle.id
