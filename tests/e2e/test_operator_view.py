"""What operators see: the run's summary in the Web UI's own HTTP API and the CLI, activity
and timer summaries, search attributes that find runs waiting at the gate, JSON log lines."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
import urllib.request
from datetime import timedelta

from ecs_canary.models import DeploymentResult
from ecs_canary.names import workflow_id_for
from ecs_canary.text import utc_clock
from tests.helpers import (
    CLUSTER,
    existing_service,
    status,
    temporal_cli,
    wait_for_stage,
    wait_until,
    worker_process,
)


def _payload_text(payload: dict) -> str:
    return json.loads(base64.b64decode(payload["data"]))


async def test_the_web_ui_and_cli_show_what_the_run_is(
    client, worker, starter, requests, ecs, ui_port, runs
):
    existing_service(ecs, requests)
    deployed = await starter.run("deploy", starter.request_file(requests.raw()))
    assert deployed.code == 0, deployed.err
    workflow_id = workflow_id_for(CLUSTER, "myapp")
    await runs.track(workflow_id)
    handle = client.get_workflow_handle(workflow_id, result_type=DeploymentResult)
    await wait_for_stage(handle, "verification", gate_open=True)

    quoted = urllib.parse.quote(handle.id, safe="")
    url = f"http://127.0.0.1:{ui_port}/api/v1/namespaces/default/workflows/{quoted}"
    body = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(url).read()))
    metadata = body["executionConfig"]["userMetadata"]
    assert _payload_text(metadata["summary"]).startswith("Deploy myapp on ecs-canary")
    assert "nginx:1.27" in _payload_text(metadata["details"])

    described = await temporal_cli(client, "workflow", "describe", "--workflow-id", handle.id)
    assert described.code == 0 and "Deploy myapp on ecs-canary" in described.out
    shown = await temporal_cli(client, "workflow", "show", "--workflow-id", handle.id, "--detailed")
    assert shown.code == 0, shown.err
    for summary in (
        "Register task definition myapp-task",
        "Create service myappCanary (desired 1)",
        "Wait for myappCanary to reach steady state",
        "Gate: wait for approval (10m)",
    ):
        assert summary in shown.out, summary
    details = (await handle.describe()).raw_description.workflow_extended_info
    assert details is not None
    # The current details were drawn when the gate opened: they give its deadline as a time
    # (a countdown there would be stale on the page) and the approvals so far.
    deadline = (await status(handle)).gate_deadline
    assert deadline is not None
    current = await temporal_cli(client, "workflow", "metadata", "--workflow-id", handle.id)
    assert current.code == 0, current.err
    opened_at = deadline - timedelta(minutes=10)
    assert f"**Gate open:** decide by {utc_clock(deadline, opened_at)} (" in current.out
    assert "**Approvals:** none yet (0 of 1)" in current.out

    await handle.signal("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"


async def test_the_list_query_finds_runs_waiting_at_the_gate(
    client, worker, starter, requests, ecs, deploy
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
    at_gate = "EcsService='myapp' AND DeploymentStage='verification'"
    shown = await temporal_cli(client, "workflow", "list", "--query", at_gate)
    assert shown.code == 0 and waiting.id in shown.out
    pending = await starter.run("pending")
    assert pending.code == 0 and "myapp" in pending.out and "billing" not in pending.out
    await waiting.signal("reject", {"by": "alice"})
    assert (await waiting.result()).outcome == "rejected"


async def test_worker_logs_are_json_lines_with_their_context(
    client, task_queue, requests, ecs, tmp_path, deploy
):
    existing_service(ecs, requests)
    log_file = tmp_path / "worker.log"
    with worker_process(client.service_client.config.target_host, task_queue, log_file):
        handle = await deploy(
            requests.raw(verification={"timeout_seconds": 1, "on_timeout": "approve"})
        )
        result = await handle.result()
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
