"""A crash or restart loses nothing: kill -9 the worker in each stage, and stop and start the
Temporal server mid-deployment; every deployment still finishes, the task definition is
registered once and no second canary is ever created."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from temporalio.client import Client

from ecs_canary.models import DeploymentResult
from ecs_canary.temporal import DATA_CONVERTER
from tests.helpers import (
    SHORT_TASK_TIMEOUT,
    DevServer,
    Runs,
    activity_running,
    approve_at_gate,
    describe,
    existing_service,
    gate_is_open,
    kill_hard,
    known_speeds,
    start,
    status,
    wait_until,
    worker_process,
    worker_settings,
)
from worker import build_worker

pytestmark = pytest.mark.slow


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
    # Slow enough ECS that each wait is still running when the worker dies (the next test's
    # `ecs_state` puts the emulator's speeds back).
    emulator.admin.settings(task_start_seconds=1.5, task_stop_seconds=1.5)
    old_arn = existing_service(ecs, requests)
    emulator.admin.reset_calls()
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    with worker_process(address, task_queue, log) as first:
        handle = await deploy(requests.raw())
        if stage in ("canary_delete", "rolling_deploy"):  # approve early
            await wait_until(lambda: gate_is_open(handle), timeout=60)
            await handle.signal("approve", {"by": "alice"})
        await wait_until(lambda: _stage_is(handle, stage), timeout=60)
        if stage == "verification":
            await wait_until(lambda: gate_is_open(handle), timeout=30)
        else:
            await wait_until(lambda: activity_running(handle, KILL_POINTS[stage]), timeout=30)
        kill_hard(first)
    known_speeds(emulator)  # slow only until the kill: what follows need not wait on ECS
    if stage == "verification":
        await handle.signal("approve", {"by": "alice"})  # lands while no worker runs
    with worker_process(address, task_queue, log):
        if stage == "canary_deploy":
            result = await approve_at_gate(handle, timeout=90)
        else:
            result = await handle.result()

    assert result.outcome == "succeeded"
    calls = emulator.admin.calls()["by_operation"]
    assert calls.get("RegisterTaskDefinition") == 1
    assert calls.get("CreateService") == 1
    revisions = ecs.list_task_definitions(familyPrefix="myapp-task")["taskDefinitionArns"]
    assert revisions == [old_arn, result.task_definition_arn]
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["runningCount"]) == (result.task_definition_arn, 3)
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


async def test_a_worker_killed_while_registering_registers_once(
    client, task_queue, requests, ecs, emulator, tmp_path, deploy
):
    """ECS calls run as local activities inside a workflow task: one in flight when its worker
    dies leaves nothing in the history, and the next worker makes it again with attempt 1.
    The registration it repeats must find the revision the dead worker's call registered."""
    old_arn = existing_service(ecs, requests)
    emulator.admin.reset_calls()
    address, log = client.service_client.config.target_host, tmp_path / "worker.log"
    with (
        worker_process(address, task_queue, log) as first,
        emulator.hold("RegisterTaskDefinition"),
    ):
        # The next worker takes the dead one's workflow task once it times out.
        handle = await deploy(requests.raw(), task_timeout=SHORT_TASK_TIMEOUT)
        await wait_until(lambda: _calls_reached(emulator, "RegisterTaskDefinition"), 30)
        kill_hard(first)
    # The dead worker's registration now takes effect, as a request AWS had received would.
    with worker_process(address, task_queue, log):
        result = await approve_at_gate(handle, timeout=90)

    assert result.outcome == "succeeded"
    assert emulator.admin.calls()["by_operation"].get("RegisterTaskDefinition") == 1
    revisions = ecs.list_task_definitions(familyPrefix="myapp-task")["taskDefinitionArns"]
    assert revisions == [old_arn, result.task_definition_arn]
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn


def _calls_reached(emulator, operation: str) -> bool:
    return emulator.admin.calls()["by_operation"].get(operation, 0) > 0


async def test_a_server_restart_mid_deployment_loses_nothing(
    task_queue, requests, ecs, emulator, tmp_path
):
    server = DevServer(tmp_path / "temporal.db", tmp_path / "server.log")
    await server.start()
    try:
        with worker_process(server.address, task_queue, tmp_path / "worker.log"):
            client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
            existing_service(ecs, requests)
            handle = await start(client, task_queue, requests.raw())
            await wait_until(lambda: gate_is_open(handle), timeout=60)

            await server.stop()
            await server.start()

            client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
            handle = client.get_workflow_handle(handle.id, result_type=DeploymentResult)
            result = await approve_at_gate(handle)
        # No fixture knows this server: its finished run is replayed here, before it stops.
        runs = Runs(client, task_queue)
        await runs.track(handle.id)
        assert await runs.finish() == 1
    finally:
        await server.stop()

    assert result.outcome == "succeeded"
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn


async def test_a_worker_shutdown_ends_its_running_waits(client, task_queue, requests, ecs, deploy):
    """On shutdown the worker cancels the waits still polling; each must end, not keep
    calling ECS from a thread nobody owns (the executor's shutdown would hang on it)."""
    settings = worker_settings(
        task_queue, max_concurrent_activities=10, graceful_shutdown_seconds=0.5
    )
    executor = ThreadPoolExecutor(max_workers=10)
    worker = build_worker(client, settings, executor)
    running = asyncio.create_task(worker.run())
    handle = await deploy(requests.raw(image="nginx:slow"))
    await wait_until(lambda: activity_running(handle, "wait_for_steady_state"), timeout=30)

    await asyncio.wait_for(worker.shutdown(), timeout=30)
    await running
    await asyncio.wait_for(asyncio.to_thread(executor.shutdown, wait=True), timeout=20)
