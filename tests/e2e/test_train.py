"""Release trains end to end: the real worker, the dev server and the ECS emulator, driven
with `starter.py train` and the `temporal` CLI as a person would.

- `examples/train.json` runs through both its waves, each approved once (the first with the
  Temporal CLI, the second with the starter).
- A train whose second wave's image cannot be pulled: wave one is approved once for both its
  services, wave two's canary fails, the line stops, wave one is put back
  (`on_failure: "roll_back_train"`) and the train fails with `TrainStopped`, listing each
  service's outcome."""

from __future__ import annotations

import json
import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from ecs_canary.names import TRAIN_WORKFLOW_TYPE
from ecs_canary.train import TrainOutcome, TrainResult, TrainStatus
from tests.helpers import (
    ROOT,
    cli_start,
    describe,
    existing_service,
    kill_hard,
    known_speeds,
    temporal_cli,
    wait_until,
    worker_process,
)
from tests.helpers.demo_script import demo


async def _gate_open(handle, wave: int) -> None:
    async def open_() -> bool:
        current = await handle.query("status", result_type=TrainStatus)
        return current.wave == wave and current.gate_open

    await wait_until(open_, timeout=60)


async def test_the_example_train_runs_through_both_waves_each_approved_once(
    worker, ecs, ecs_state, client, runs, starter, task_queue
):
    example = demo.resolve(json.loads((ROOT / "examples" / "train.json").read_text()), ecs_state)
    path = starter.request_file(example, "train.json")
    workflow_id = "ecs-canary-train/payments"
    started = await cli_start(
        client, task_queue, workflow_id, "--input-file", path, workflow_type=TRAIN_WORKFLOW_TYPE
    )
    assert started.code == 0, started.err
    await runs.track(workflow_id)
    handle = client.get_workflow_handle(workflow_id, result_type=TrainResult)

    await _gate_open(handle, 1)
    signalled = await temporal_cli(
        client,
        "workflow",
        "signal",
        "--workflow-id",
        workflow_id,
        "--name",
        "approve",
        "--input",
        '{"by": "alice"}',
    )
    assert signalled.code == 0, signalled.err
    await _gate_open(handle, 2)
    listed = []

    async def pending_lists_wave_two() -> bool:
        listed.append(await starter.run("pending", "--service", "orders"))
        return "  service:   orders on ecs-canary" in listed[-1].lines

    await wait_until(pending_lists_wave_two, timeout=30, every=0.5)
    run_id = (await handle.describe()).run_id
    train_approve = f"python starter.py train approve {workflow_id} --run-id {run_id} --by "
    assert f"  train:     {workflow_id} decides this canary with the rest of its wave" in (
        listed[-1].lines
    )
    assert any(line.startswith(f"  approve:   {train_approve}") for line in listed[-1].lines)
    assert "python starter.py approve ecs-canary/" not in listed[-1].out  # it would be refused
    approved = await starter.run("train", "approve", workflow_id, "--by", "bob")
    assert approved.code == 0, approved.err
    watched = await starter.run("train", "watch", workflow_id)

    assert watched.code == 0, watched.err
    assert "outcome: succeeded" in watched.out
    result = await handle.result()
    assert [(s.service, s.outcome) for s in result.services] == [
        ("myapp", TrainOutcome.SUCCEEDED),
        ("billing", TrainOutcome.SUCCEEDED),
        ("orders", TrainOutcome.SUCCEEDED),
    ]
    final = await handle.query("status", result_type=TrainStatus)
    assert [(w.name, w.decision and w.decision.by) for w in final.waves] == [
        ("canary-wave", "alice"),
        ("the-rest", "bob"),
    ]
    for service in ("myapp", "billing", "orders"):
        assert describe(ecs, service)["runningCount"] == describe(ecs, service)["desiredCount"]


async def test_a_nopull_image_in_wave_two_stops_the_line_and_wave_one_is_put_back(
    worker, requests, ecs, client, runs, starter
):
    before = {s: existing_service(ecs, requests, service=s, desired=1) for s in ("api", "web")}
    name = f"payments-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "waves": [
            {
                "name": "one",
                "deployments": [
                    requests.raw(service="api", desired=1),
                    requests.raw(service="worker", desired=1),  # a first deployment
                ],
            },
            {
                "name": "two",
                "deployments": [requests.raw(service="web", image="nginx:nopull", desired=1)],
            },
        ],
        "on_failure": "roll_back_train",
    }
    following = await starter.spawn(
        "train", "start", starter.request_file(body, "train.json"), "--wait"
    )
    workflow_id = f"ecs-canary-train/{name}"
    await wait_until(lambda: following.printed(f"workflow id: {workflow_id}"))
    await runs.track(workflow_id)
    handle = client.get_workflow_handle(workflow_id, result_type=TrainResult)
    await _gate_open(handle, 1)
    approved = await starter.run("train", "approve", workflow_id, "--by", "alice")
    assert approved.code == 0, approved.err
    assert "approve accepted: approve by alice" in approved.out
    assert "every canary of wave one will be promoted" in approved.out

    followed = await following.finish(timeout=120)
    assert followed.code == 1
    assert "outcome: stopped (web on ecs-canary: failed: TasksFailed:" in followed.out
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    error = failed.value.cause
    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    result = TrainResult.model_validate(error.details[0])
    outcomes = {s.service: s.outcome for s in result.services}
    assert outcomes == {
        "api": TrainOutcome.PUT_BACK,
        "worker": TrainOutcome.PUT_BACK,
        "web": TrainOutcome.FAILED,
    }
    reasons = {s.service: s.reason or "" for s in result.services}
    assert "CannotPullContainerError" in reasons["web"]
    assert reasons["worker"].startswith("removed (the train had created it)")

    # Wave one was rolled out, then put back (api) or removed (worker, a first deployment);
    # the line stopped before web's main service was touched.
    api = describe(ecs, "api")
    assert (api["taskDefinition"], api["desiredCount"], api["runningCount"]) == (
        before["api"],
        1,
        1,
    )
    assert describe(ecs, "worker")["status"] == "INACTIVE"
    assert describe(ecs, "web")["taskDefinition"] == before["web"]
    for canary in ("apiCanary", "workerCanary", "webCanary"):
        assert describe(ecs, canary)["status"] == "INACTIVE"


@pytest.mark.slow
async def test_a_worker_killed_mid_wave_loses_nothing(
    client, task_queue, requests, ecs, emulator, runs, tmp_path
):
    """Two workers; one is killed with `kill -9` while wave one's deployments are in flight.
    The other finishes the train and every deployment: each service is rolled out once, and
    every canary is gone."""
    emulator.admin.settings(task_start_seconds=1.5, task_stop_seconds=1.5)
    services = ["api", "worker", "web", "jobs"]
    for service in services:
        existing_service(ecs, requests, service=service, desired=1)
    emulator.admin.reset_calls()
    name = f"payments-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "waves": [
            {"name": wave, "deployments": [requests.raw(service=s, desired=1) for s in chunk]}
            for wave, chunk in (("one", services[:3]), ("two", services[3:]))
        ],
        "approval": "none",
    }
    address = client.service_client.config.target_host
    with (
        worker_process(address, task_queue, tmp_path / "survivor.log"),
        worker_process(address, task_queue, tmp_path / "killed.log") as killed,
    ):
        handle = await runs.start_train(body)

        async def wave_one_in_flight() -> bool:
            current = await handle.query("status", result_type=TrainStatus)
            return current.counts["in_flight"] == 3

        await wait_until(wave_one_in_flight, timeout=60)
        kill_hard(killed)
        known_speeds(emulator)  # slow only until the kill: what follows need not wait on ECS
        result = await handle.result()

    assert result.outcome == "succeeded"
    assert {s.service: s.outcome for s in result.services} == dict.fromkeys(
        services, TrainOutcome.SUCCEEDED
    )
    calls = emulator.admin.calls()["by_operation"]
    assert calls.get("RegisterTaskDefinition") == len(services)
    assert calls.get("CreateService") == len(services)  # one canary each
    for service in services:
        assert describe(ecs, f"{service}Canary")["status"] == "INACTIVE"
