"""Pause and resume end to end (issue 26): the real dev server, the in-process worker and the
ECS emulator.
- Paused with `starter.py pause` during the bake and resumed with the `temporal` CLI's Update:
  the bake's timer is cancelled while paused, nothing moves past the moment the bake would
  have ended, and once resumed the bake runs for what it had left.
- Paused with the `temporal` CLI's signal during the canary deploy (slow task starts) and
  resumed with `starter.py resume`: the canary's wait for steady state finishes, and no
  verification begins until the resume.
- Paused during a verification step: the step finishes, and the next one begins only after
  the resume.
- A release train paused during its wave: each deployment in flight is paused by its train,
  finishes its canary's wait and goes no further until the train is resumed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType

from ecs_canary.models import DeploymentStatus
from ecs_canary.names import workflow_id_for
from ecs_canary.train import TrainOutcome, TrainResult, TrainStatus
from tests.helpers import (
    CLUSTER,
    existing_service,
    http_target,
    known_speeds,
    status,
    temporal_cli,
    wait_for_stage,
    wait_until,
)

# Long enough that starter.py's pause (a Python process: 1 s to start, up to 5 s seen beside
# the whole suite) lands during the bake. The test waits out the bake about twice.
BAKE = 14


async def _cli(client, how: str, wid: str, name: str, payload: dict) -> Any:
    """`temporal workflow signal` or `update execute` with a JSON payload, as people type it."""
    command = ["signal"] if how == "signal" else ["update", "execute"]
    workflow_args = ["--workflow-id", wid, "--name", name, "--input", json.dumps(payload)]
    return await temporal_cli(client, "workflow", *command, *workflow_args)


async def _canary_steady(handle) -> bool:
    """The canary's wait for steady state has completed (in the run's history)."""
    history = await handle.fetch_history()
    waits = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "wait_for_steady_state"
    }
    return any(
        e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.scheduled_event_id in waits
        for e in history.events
    )


async def _bake_timer_cancelled(handle) -> bool:
    history = await handle.fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_CANCELED for e in history.events)


@pytest.mark.slow
async def test_pause_with_the_starter_and_resume_with_the_temporal_cli(
    worker, starter, client, requests, ecs, deploy
):
    existing_service(ecs, requests)
    wid = workflow_id_for(CLUSTER, "myapp")
    handle = await deploy(
        requests.raw(verification={"bake_seconds": BAKE, "timeout_seconds": 300}), workflow_id=wid
    )

    async def baking() -> DeploymentStatus | None:
        current = await status(handle)
        return current if current.bake_ends_at is not None else None

    bake_ends_at = (await wait_until(baking, timeout=60)).bake_ends_at
    assert bake_ends_at is not None

    paused = await starter.run("pause", wid, "--by", "alice", "--reason", "incident elsewhere")
    assert paused.code == 0, paused.err
    assert "paused by alice at " in paused.out and "incident elsewhere" in paused.out
    await wait_until(lambda: _bake_timer_cancelled(handle), timeout=30)
    shown = await starter.run("status", wid)
    assert any(line.startswith("paused:    PAUSED by alice") for line in shown.lines), shown.out
    listed = await starter.run("pending", "--service", "myapp")
    assert "  paused:    PAUSED by alice" in " ".join(listed.lines), listed.out

    # Past the moment the bake would have ended, the gate is still closed.
    await wait_until(lambda: datetime.now(UTC) > bake_ends_at + timedelta(seconds=2), timeout=30)
    held = await status(handle)
    assert not held.gate_open and held.paused is not None and held.decision is None

    resumed = await _cli(client, "update", wid, "resume", {"by": "bob", "reason": "incident over"})
    assert resumed.code == 0, resumed.err
    after = await status(handle)
    assert after.paused is None and after.bake_ends_at is not None
    assert after.bake_ends_at > bake_ends_at  # it ends later by the time paused

    async def gate_open() -> bool:
        return (await status(handle)).gate_open

    await wait_until(gate_open, timeout=60)
    opened_at = datetime.now(UTC)
    assert opened_at >= after.bake_ends_at - timedelta(seconds=1)
    approved = await starter.run("approve", wid, "--by", "alice")
    assert approved.code == 0, approved.err
    result = await handle.result()

    assert result.outcome == "succeeded"
    audit = [(a.action, a.by, a.via, a.accepted) for a in result.attempts]
    assert audit == [
        ("pause", "alice", "update", True),
        ("resume", "bob", "update", True),
        ("approve", "alice", "update", True),
    ]


async def test_a_pause_during_the_canary_deploy_starts_no_verification_until_resumed(
    worker, starter, client, requests, ecs, emulator, deploy
):
    existing_service(ecs, requests)
    emulator.admin.settings(task_start_seconds=6)  # the pause lands while the canary starts
    wid = workflow_id_for(CLUSTER, "myapp")
    handle = await deploy(requests.raw(verification={"timeout_seconds": 300}), workflow_id=wid)
    await wait_for_stage(handle, "canary_deploy")

    pause = {"by": "alice", "reason": "incident elsewhere"}
    paused = await _cli(client, "signal", wid, "pause", pause)
    assert paused.code == 0, paused.err
    await wait_until(lambda: _canary_steady(handle), timeout=60)  # the call in flight ends
    held = await status(handle)
    assert held.paused is not None and held.paused.by == "alice"
    assert held.stage.value == "canary_deploy" and not held.gate_open
    assert [t.stage.value for t in held.stages] == ["canary_deploy"]
    known_speeds(emulator)  # slow only while the pause lands: the rollout need not wait

    resumed = await starter.run("resume", wid, "--by", "bob")
    assert resumed.code == 0, resumed.err
    await wait_for_stage(handle, "verification", gate_open=True)
    approved = await starter.run("approve", wid, "--by", "alice")
    assert approved.code == 0, approved.err
    result = await handle.result()

    assert result.outcome == "succeeded"
    holds = [(a.action, a.by, a.via) for a in result.attempts if a.action != "approve"]
    assert holds == [("pause", "alice", "signal"), ("resume", "bob", "update")]


async def test_a_pause_during_a_verification_step_lets_it_finish_and_starts_no_next_step(
    worker, starter, requests, ecs, deploy
):
    existing_service(ecs, requests)
    wid = workflow_id_for(CLUSTER, "myapp")
    with http_target() as target:
        steps = [
            {
                "name": "health",
                "type": "http",
                "url": target.url("/health"),
                # 12 s: the pause (a starter.py process) lands while it runs, loaded or not.
                "requests": 24,
                "interval_seconds": 0.5,
            },
            {"name": "again", "type": "http", "url": target.url("/again"), "requests": 1},
        ]
        verification = {"steps": steps, "timeout_seconds": 300}
        handle = await deploy(requests.raw(verification=verification), workflow_id=wid)

        async def step_phases() -> list[str]:
            return [step.state for step in (await status(handle)).verification_steps]

        await wait_until(lambda: _phases_are(step_phases, ["running", "pending"]), timeout=60)
        paused = await starter.run("pause", wid, "--by", "alice")
        assert paused.code == 0, paused.err
        await wait_until(lambda: _phases_are(step_phases, ["passed", "pending"]), timeout=60)
        held = await status(handle)
        assert held.paused is not None and not held.gate_open
        assert "/again" not in target.paths  # the next step has not begun

        resumed = await starter.run("resume", wid, "--by", "alice")
        assert resumed.code == 0, resumed.err
        await wait_for_stage(handle, "verification", gate_open=True)
        assert target.paths.count("/again") == 1
        approved = await starter.run("approve", wid, "--by", "alice")
        assert approved.code == 0, approved.err
        result = await handle.result()

    assert result.outcome == "succeeded"
    assert [(s.name, s.state) for s in result.verification_steps] == [
        ("health", "passed"),
        ("again", "passed"),
    ]


async def _phases_are(phases: Any, expected: list[str]) -> bool:
    return await phases() == expected


async def test_a_paused_train_holds_its_deployments_in_flight_until_resumed(
    worker, requests, ecs, emulator, client, runs, starter
):
    for service in ("api", "web"):
        existing_service(ecs, requests, service=service, desired=1)
    emulator.admin.settings(task_start_seconds=6)  # the pause lands while they start
    name = f"hold-{uuid.uuid4().hex[:6]}"
    deployments = [requests.raw(service=service, desired=1) for service in ("api", "web")]
    body = {
        "name": name,
        "approval": "none",
        "waves": [{"name": "one", "deployments": deployments}],
    }
    started = await starter.run("train", "start", starter.request_file(body, "train.json"))
    assert started.code == 0, started.err
    workflow_id = f"ecs-canary-train/{name}"
    await runs.track(workflow_id)
    train = client.get_workflow_handle(workflow_id, result_type=TrainResult)

    async def deploying() -> list[str] | None:
        # A wave no person decides starts its deployments approved up front: in flight, each
        # shows stage "approved" until it ends.
        rows = (await train.query("status", result_type=TrainStatus)).waves[0].deployments
        in_flight = all(row.stage == "approved" for row in rows)
        return [row.workflow_id for row in rows] if in_flight else None

    children = await wait_until(deploying, timeout=60)
    # The temporal CLI starts at once: the pause lands while the canaries start.
    paused = await _cli(client, "update", workflow_id, "pause", {"by": "alice"})
    assert paused.code == 0, paused.err
    handles = [client.get_workflow_handle(child) for child in children]
    for handle in handles:  # each one in flight is paused by its train, and its wait ends
        await wait_until(lambda h=handle: _paused(h), timeout=60)
        await wait_until(lambda h=handle: _canary_steady(h), timeout=60)
    for handle in handles:
        held = await status(handle)
        assert held.stage.value == "canary_deploy" and held.paused is not None
    known_speeds(emulator)  # slow only while the pause lands: the rollouts need not wait

    resumed = await starter.run("train", "resume", workflow_id, "--by", "alice")
    assert resumed.code == 0, resumed.err
    result = await train.result()

    assert [(s.service, s.outcome) for s in result.services] == [
        ("api", TrainOutcome.SUCCEEDED),
        ("web", TrainOutcome.SUCCEEDED),
    ]


async def _paused(handle: Any) -> bool:
    return (await status(handle)).paused is not None
