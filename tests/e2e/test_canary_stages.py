"""Each path through the four stages, against the emulator and a real Temporal dev server."""

from __future__ import annotations

import json

from ecs_canary.names import workflow_id_for
from tests.helpers import (
    CLUSTER,
    cli_start,
    describe,
    existing_service,
    in_order,
    request_file,
    status,
    temporal_cli,
    wait_for_stage,
    wait_until,
)


def _canary_exists(ecs) -> bool:
    found = describe(ecs, "myappCanary")
    return found is not None and found["status"] == "ACTIVE"


async def _has_attempts(handle) -> bool:
    return bool((await status(handle)).attempts)


async def test_reject_deletes_the_canary_and_leaves_main_untouched(worker, requests, ecs, deploy):
    old_arn = existing_service(ecs, requests)
    handle = await deploy(requests.raw())
    await wait_for_stage(handle, "verification", gate_open=True)
    await handle.signal("reject", {"by": "bob", "reason": "error rate up"})
    result = await handle.result()

    assert result.outcome == "rejected"
    assert result.decision.action == "reject" and result.decision.by == "bob"
    assert result.canary_deleted
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], main["runningCount"]) == (old_arn, 2, 2)
    assert [s.stage.value for s in result.stages] == [
        "canary_deploy",
        "verification",
        "canary_delete",
    ]


async def test_reject_while_the_canary_starts_stops_at_once(worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    handle = await deploy(requests.raw(image="nginx:slow"))
    await wait_until(lambda: _canary_exists(ecs))
    await handle.signal("reject", {"by": "bob"})
    result = await handle.result()

    assert result.outcome == "rejected"
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


async def test_early_approve_is_refused_and_recorded(worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    handle = await deploy(requests.raw(image="nginx:slow"))
    await handle.signal("approve", {"by": "alice"})
    await wait_until(lambda: _has_attempts(handle))
    current = await status(handle)
    assert current.stage.value == "canary_deploy" and not current.gate_open
    refused = current.attempts[0]
    assert (refused.by, refused.accepted, refused.via) == ("alice", False, "signal")
    assert "not steady" in refused.refusal
    await handle.signal("reject", {"by": "alice"})
    assert (await handle.result()).outcome == "rejected"


async def test_gate_timeout_rejects_by_default(worker, requests, ecs, deploy):
    old_arn = existing_service(ecs, requests)
    handle = await deploy(requests.raw(verification={"timeout_seconds": 1}))
    result = await handle.result()

    assert result.outcome == "rejected"
    assert (result.decision.action, result.decision.via) == ("reject", "timeout")
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


async def test_gate_timeout_can_approve(worker, requests, ecs, deploy):
    existing_service(ecs, requests)
    handle = await deploy(
        requests.raw(verification={"timeout_seconds": 1, "on_timeout": "approve"})
    )
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert (result.decision.action, result.decision.via) == ("approve", "timeout")
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn


async def test_first_deployment_creates_the_main_service(worker, requests, ecs, deploy):
    handle = await deploy(requests.raw(service="billing", desired=2))
    await wait_for_stage(handle, "verification", gate_open=True)
    await handle.signal("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == "succeeded" and result.previous_task_definition_arn is None
    main = describe(ecs, "billing")
    assert (main["status"], main["taskDefinition"]) == ("ACTIVE", result.task_definition_arn)
    assert (main["desiredCount"], main["runningCount"]) == (2, 2)


async def test_same_as_running_instances_keeps_the_current_count(worker, requests, ecs, deploy):
    existing_service(ecs, requests, desired=4)
    request = requests.raw(desired=2, rolling={"same_as_running_instances": True})
    handle = await deploy(request)
    await wait_for_stage(handle, "verification", gate_open=True)
    await handle.signal("approve", {"by": "alice"})
    result = await handle.result()

    main = describe(ecs, "myapp")
    assert main["taskDefinition"] == result.task_definition_arn
    assert (main["desiredCount"], main["runningCount"]) == (4, 4)


async def test_a_leftover_canary_is_replaced(worker, requests, ecs, logs, deploy):
    existing_service(ecs, requests)
    leftover_arn = existing_service(ecs, requests, service="myappCanary", desired=1)
    handle = await deploy(requests.raw())
    await wait_for_stage(handle, "verification", gate_open=True)
    canary = describe(ecs, "myappCanary")
    assert canary["status"] == "ACTIVE" and canary["taskDefinition"] != leftover_arn
    await handle.signal("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"
    assert in_order(
        logs.lines(),
        [
            "Deleting service myappCanary..",
            "Existing Service myappCanary reached inactive state",
            "Creating Service myappCanary with task definition",
        ],
    )


async def test_the_temporal_cli_alone_drives_a_deployment(
    client, worker, task_queue, requests, ecs, tmp_path, runs
):
    """The README's recipe: start, query, signal and result with the temporal CLI only."""
    existing_service(ecs, requests)
    workflow_id = workflow_id_for(CLUSTER, "myapp")
    # The public workflow type, spelled as the README spells it: the name is under test here.
    public_type = "EcsCanaryDeployment"
    start = ["--input-file", request_file(tmp_path, requests.raw())]
    started = await cli_start(client, task_queue, workflow_id, *start, workflow_type=public_type)
    assert started.code == 0, started.err
    await runs.track(workflow_id)

    async def gate_open() -> bool:
        query = ["--workflow-id", workflow_id, "--name", "status", "--output", "json"]
        shown = await temporal_cli(client, "workflow", "query", *query)
        return shown.code == 0 and json.loads(shown.out)["queryResult"][0]["gate_open"]

    await wait_until(gate_open)
    signal = ["--workflow-id", workflow_id, "--name", "approve", "--input", '{"by": "alice"}']
    signalled = await temporal_cli(client, "workflow", "signal", *signal)
    assert signalled.code == 0, signalled.err
    done = await temporal_cli(
        client, "workflow", "result", "--workflow-id", workflow_id, "--output", "json"
    )
    assert done.code == 0, done.err
    result = json.loads(done.out)["result"]
    assert result["outcome"] == "succeeded"
    assert describe(ecs, "myapp")["taskDefinition"] == result["task_definition_arn"]
