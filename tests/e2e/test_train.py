"""A release train end to end: the real worker, the dev server and the ECS emulator, driven
with `starter.py train` as a person would. Wave one is approved once for both its services;
wave two's image cannot be pulled, so its canary fails, the line stops, wave one is put back
(`on_failure: "roll_back_train"`) and the train fails with `TrainStopped`, listing each
service's outcome."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from ecs_canary.train import TrainOutcome, TrainResult, TrainStatus
from tests.helpers import describe, existing_service, wait_until


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

    async def gate_open() -> bool:
        current = await handle.query("status", result_type=TrainStatus)
        return current.wave == 1 and current.gate_open

    await wait_until(gate_open)
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
