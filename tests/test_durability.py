"""A crash or restart loses nothing: kill -9 the worker in each stage, and stop and start the
Temporal server mid-deployment; every deployment still finishes, the task definition is
registered once and no second canary is ever created."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from ecs_canary.models import DeploymentResult
from tests.processes import DevServer, kill_hard, spawn_worker, stop
from tests.support import describe, existing_service, start, status, wait_until

CLUSTER = "ecs-canary"


async def _running_activity(handle, activity_type: str) -> bool:
    description = await handle.describe()
    return any(
        pending.activity_type.name == activity_type
        and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for pending in description.raw_description.pending_activities
    )


async def _stage_is(handle, stage: str) -> bool:
    try:
        return (await status(handle)).stage.value == stage
    except Exception:  # noqa: BLE001 - no worker may be answering queries right now
        return False


# Where to kill the worker: the stage, and what must be running at that moment.
KILL_POINTS = {
    "canary_deploy": "wait_for_steady_state",
    "verification": None,
    "canary_delete": "wait_for_inactive",
    "rolling_deploy": "wait_for_steady_state",
}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
async def test_killing_the_worker_loses_nothing(
    stage, client, task_queue, requests, ecs, emulator, tmp_path, deploy
):
    # Slow enough ECS that each wait is still running when the worker dies.
    emulator.admin.settings(task_start_seconds=1.5, task_stop_seconds=1.5)
    try:
        old_arn = existing_service(ecs, requests)
        emulator.admin.reset_calls()
        address = client.service_client.config.target_host
        log = tmp_path / "worker.log"
        worker = spawn_worker(address, task_queue, log)
        handle = await deploy(requests.raw())

        approve_early = stage in ("canary_delete", "rolling_deploy")
        if approve_early:
            await wait_until(lambda: _gate_open(handle), timeout=60)
            await handle.signal("approve", {"by": "alice"})
        await wait_until(lambda: _stage_is(handle, stage), timeout=60)
        if stage == "verification":
            await wait_until(lambda: _gate_open(handle), timeout=30)
        else:
            await wait_until(lambda: _running_activity(handle, KILL_POINTS[stage]), timeout=30)
        kill_hard(worker)
        if stage == "verification":
            await handle.signal("approve", {"by": "alice"})  # lands while no worker runs
        replacement = spawn_worker(address, task_queue, log)
        try:
            if stage == "canary_deploy":
                await wait_until(lambda: _gate_open(handle), timeout=90)
                await handle.signal("approve", {"by": "alice"})
            result = await handle.result()
        finally:
            stop(replacement)
    finally:
        emulator.admin.settings(task_start_seconds=0.3, task_stop_seconds=0.2)

    assert result.outcome == "succeeded"
    calls = emulator.admin.calls()["by_operation"]
    assert calls.get("RegisterTaskDefinition") == 1
    assert calls.get("CreateService") == 1
    revisions = ecs.list_task_definitions(familyPrefix="myapp-task")["taskDefinitionArns"]
    assert revisions == [old_arn, result.task_definition_arn]
    main = describe(ecs, CLUSTER, "myapp")
    assert (main["taskDefinition"], main["runningCount"]) == (result.task_definition_arn, 3)
    assert describe(ecs, CLUSTER, "myappCanary")["status"] == "INACTIVE"


async def test_a_worker_killed_while_registering_registers_once(
    client, task_queue, requests, ecs, emulator, tmp_path, deploy
):
    """ECS calls run as local activities inside a workflow task: one in flight when its worker
    dies leaves nothing in the history, and the next worker makes it again with attempt 1.
    The registration it repeats must find the revision the dead worker's call registered."""
    old_arn = existing_service(ecs, requests)
    emulator.admin.reset_calls()
    address = client.service_client.config.target_host
    log = tmp_path / "worker.log"
    worker = spawn_worker(address, task_queue, log)
    with emulator.hold("RegisterTaskDefinition"):
        handle = await deploy(requests.raw())
        await wait_until(lambda: _calls_reached(emulator, "RegisterTaskDefinition"), timeout=30)
        kill_hard(worker)
    # The dead worker's registration now takes effect, as a request AWS had received would.
    replacement = spawn_worker(address, task_queue, log)
    try:
        await wait_until(lambda: _gate_open(handle), timeout=90)
        await handle.signal("approve", {"by": "alice"})
        result = await handle.result()
    finally:
        stop(replacement)

    assert result.outcome == "succeeded"
    assert emulator.admin.calls()["by_operation"].get("RegisterTaskDefinition") == 1
    revisions = ecs.list_task_definitions(familyPrefix="myapp-task")["taskDefinitionArns"]
    assert revisions == [old_arn, result.task_definition_arn]
    assert describe(ecs, CLUSTER, "myapp")["taskDefinition"] == result.task_definition_arn


async def _calls_reached(emulator, operation: str) -> bool:
    return emulator.admin.calls()["by_operation"].get(operation, 0) > 0


async def _gate_open(handle) -> bool:
    try:
        return (await status(handle)).gate_open
    except Exception:  # noqa: BLE001 - the query waits for a worker that may be restarting
        return False


async def test_a_server_restart_mid_deployment_loses_nothing(
    task_queue, requests, ecs, emulator, tmp_path
):
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    await server.start()
    worker = None
    try:
        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        worker = spawn_worker(server.address, task_queue, tmp_path / "worker.log")
        existing_service(ecs, requests)
        handle = await start(client, task_queue, requests.raw())
        await wait_until(lambda: _gate_open(handle), timeout=60)

        await server.stop()
        await server.start()

        client = await Client.connect(server.address, data_converter=pydantic_data_converter)
        handle = client.get_workflow_handle(handle.id, result_type=DeploymentResult)
        await wait_until(lambda: _gate_open(handle), timeout=60)
        await handle.signal("approve", {"by": "alice"})
        result = await handle.result()
    finally:
        if worker is not None:
            stop(worker)
        await server.stop()

    assert result.outcome == "succeeded"
    assert describe(ecs, CLUSTER, "myapp")["taskDefinition"] == result.task_definition_arn


async def test_a_worker_shutdown_ends_its_running_waits(client, task_queue, requests, ecs, deploy):
    """On shutdown the worker cancels the waits still polling; each must end, not keep
    calling ECS from a thread nobody owns (the executor's shutdown would hang on it)."""
    from concurrent.futures import ThreadPoolExecutor

    from ecs_canary.config import WorkerSettings
    from worker import build_worker

    settings = WorkerSettings(
        task_queue=task_queue,
        max_concurrent_activities=10,
        graceful_shutdown_seconds=0.5,
        ecs_calls_per_second=200,
    )
    executor = ThreadPoolExecutor(max_workers=10)
    worker = build_worker(client, settings, executor)
    running = asyncio.create_task(worker.run())
    handle = await deploy(requests.raw(image="nginx:slow"))
    await wait_until(lambda: _running_activity(handle, "wait_for_steady_state"), timeout=30)

    await asyncio.wait_for(worker.shutdown(), timeout=30)
    await running
    await asyncio.wait_for(asyncio.to_thread(executor.shutdown, wait=True), timeout=20)
