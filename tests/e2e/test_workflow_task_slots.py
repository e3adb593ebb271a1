"""A worker whose deployments all wait for the ECS budget still works on its other runs.

A workflow task holds its slot while its local activities (every ECS call) wait for the
budget. With the SDK's default of 100 slots, a release train's wave of more than 100
deployments on one worker held every slot, and the train's own tasks and every `status` query
waited (worker.WORKFLOW_TASK_SLOTS)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio.api.enums.v1 import PendingWorkflowTaskState
from temporalio.service import RPCError, RPCStatusCode

from ecs_canary.names import TRAIN_WORKFLOW_TYPE, train_workflow_id_for, workflow_id_for
from ecs_canary.train import TrainResult, TrainStatus
from tests.helpers import wait_until
from tests.helpers.workers import in_process_worker, session_clients, worker_settings

_DEFAULT_SLOTS = 100  # the SDK's default number of workflow task slots
_DEPLOYMENTS = 110
_STARTED = PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED
# A budget of its own: the AWS clients held at 0 calls per second are this test's only.
_OWN_BUDGET = 123.0
_QUERY_TIMEOUT = timedelta(seconds=5)


async def test_a_train_answers_while_every_deployment_of_its_wave_waits_for_the_budget(
    client, task_queue, requests, ecs_state, emulator, runs
):
    settings = {"ecs_calls_per_second": _OWN_BUDGET}
    budget = session_clients(worker_settings(task_queue, **settings)).ecs_budget
    name = f"slots-{uuid.uuid4().hex[:6]}"
    services = [f"slot{i:03d}" for i in range(_DEPLOYMENTS)]
    deployments = [
        client.get_workflow_handle(workflow_id_for(ecs_state["cluster"], s)) for s in services
    ]
    body = {
        "name": name,
        "waves": [{"name": "all", "deployments": [requests.raw(service=s) for s in services]}],
        "approval": "none",
        "max_parallel": _DEPLOYMENTS,
    }
    emulator.admin.reset_calls()
    budget.set_rate(0)  # every ECS call waits
    try:
        async with in_process_worker(client, task_queue, **settings):
            handle = await client.start_workflow(
                TRAIN_WORKFLOW_TYPE,
                body,
                id=train_workflow_id_for(name),
                task_queue=task_queue,
                result_type=TrainResult,
            )
            await runs.track(handle.id)

            async def more_tasks_held_than_default_slots() -> bool:
                # (a deployment the train has not started yet is not found)
                found = await asyncio.gather(
                    *(d.describe() for d in deployments), return_exceptions=True
                )
                held = [
                    run.raw_description.pending_workflow_task.state == _STARTED
                    for run in found
                    if not isinstance(run, BaseException)
                ]
                return sum(held) > _DEFAULT_SLOTS

            await wait_until(more_tasks_held_than_default_slots, timeout=60)
            asked = time.monotonic()
            status = await handle.query(
                "status", result_type=TrainStatus, rpc_timeout=_QUERY_TIMEOUT
            )
            answered_in = time.monotonic() - asked
            # Before any held call may go: nothing of theirs reaches ECS. The train first, so
            # that it starts no more; one whose start it had only just asked for may not exist.
            await handle.terminate("test finished")
            ended = await asyncio.gather(
                *(d.terminate("test finished") for d in deployments), return_exceptions=True
            )
    finally:
        budget.set_rate(_OWN_BUDGET)
    assert status.counts["in_flight"] == _DEPLOYMENTS
    not_started = [e for e in ended if isinstance(e, RPCError)]
    assert all(e.status == RPCStatusCode.NOT_FOUND for e in not_started), not_started
    assert len(not_started) + sum(e is None for e in ended) == _DEPLOYMENTS
    assert answered_in < 2.0
    assert emulator.admin.calls()["total"] == 0
