"""A release train paused during a wave, and held between waves by a freeze window, on the
time-skipping server (issue 26): the real train and deployments on fake ECS activities (the
fixtures of test_train). A paused train pauses its deployments in flight, so nothing of it
moves until resume: their bakes and the train gate's timer resume with what was left."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from ecs_canary.hold import TrainHold
from ecs_canary.models import DeploymentStatus, Paused
from ecs_canary.names import TRAIN_WORKFLOW_TYPE, workflow_id_for
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.policy import SIGNED_DECISIONS_ENV as POLICY_ENV
from ecs_canary.train import TrainResult, TrainStatus
from ecs_canary.train_sent import TRAIN_HOLD_MEMO, hold_digest
from tests.helpers import replay_histories, wait_until
from tests.workflow import test_train as trains
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service
from tests.workflow.test_train import details_of, gate_open_at, status_of

# The release-train fixtures: a worker with both workflows on fake ECS, and a start.
train_queue, start_train = trains.train_queue, trains.start_train

# Each moves the clock by hours: on a server of its own (tests/workflow/conftest.py).
pytestmark = pytest.mark.own_clock

HOUR = 3600
# Nine minutes: not a whole number of the train's 10-minute sweeps (workflows.train looks at its
# runs in flight after 10 minutes without news), so a bake that whole hours of pause stretched
# never ends as a sweep's timer fires. A 10-minute bake paused for 2 h ended with the train's
# 13th sweep, and on a loaded machine the canaries' reports came first: the train cancelled the
# sweep's timer in the very workflow task during which it fired, a completion the time-skipping
# server rejects without ever retrying the task (temporalio/sdk-java#2606; Temporal's own server
# takes it), so its clock never skipped again and the next sleep ran out of time.
BAKE = 540


@pytest.fixture
def services(fake_ecs: FakeEcs) -> tuple[str, str, str]:
    """Three running services of this test's own (other tests leave runs of theirs open):
    two in wave one, one in wave two."""
    suffix = uuid.uuid4().hex[:6]
    names = (f"api-{suffix}", f"worker-{suffix}", f"web-{suffix}")
    for name in names:
        fake_ecs.services[name] = running_service(name, desired=2)
    return names


def _baking_train(services: tuple[str, str, str], **settings: Any) -> dict[str, Any]:
    """Two waves (the first two services, then the third), each canary baking `BAKE`."""
    waves = {"one": services[:2], "two": services[2:]}
    return {
        "name": f"payments-{uuid.uuid4().hex[:6]}",
        "waves": [
            {
                "name": name,
                "deployments": [
                    request(service_name=s, verification={"bake_seconds": BAKE}) for s in names
                ],
            }
            for name, names in waves.items()
        ],
        **settings,
    }


async def _deployment(client: Client, service: str) -> DeploymentStatus:
    handle = client.get_workflow_handle(workflow_id_for("ecs-canary", service))
    return await handle.query("status", result_type=DeploymentStatus)


async def _all(client: Client, services: tuple[str, ...], holds: Any) -> list[DeploymentStatus]:
    async def check() -> list[DeploymentStatus] | None:
        try:
            found = [await _deployment(client, s) for s in services]
        except RPCError:  # not started yet
            return None
        return found if all(holds(s) for s in found) else None

    return await wait_until(check)


async def test_a_paused_train_pauses_its_wave_and_resumes_its_timers_with_what_was_left(
    services, start_train, time_skipping
):
    client = time_skipping.client
    handle = await start_train(_baking_train(services, timeout_seconds=HOUR))
    wave_one = services[:2]
    baking = await _all(client, wave_one, lambda s: s.bake_ends_at is not None)
    await time_skipping.sleep(200)

    paused = await handle.execute_update(
        "pause", {"by": "alice", "reason": "incident"}, result_type=TrainStatus
    )
    assert paused.paused is not None and paused.paused.by == "alice"
    held = await _all(client, wave_one, lambda s: s.paused is not None)
    assert {s.paused.reason for s in held if s.paused} == {"incident"}
    assert (await details_of(handle)).startswith("**PAUSED** by alice")
    await time_skipping.sleep(2 * HOUR)
    still = [await _deployment(client, s) for s in wave_one]
    assert [s.bake_ends_at for s in still] == [s.bake_ends_at for s in baking]  # not counting
    assert not (await status_of(handle)).gate_open

    await handle.execute_update("resume", {"by": "alice"}, result_type=TrainStatus)
    resumed = await _all(client, wave_one, lambda s: s.paused is None)
    for before, after in zip(baking, resumed, strict=True):
        assert before.bake_ends_at is not None and after.bake_ends_at is not None
        assert after.bake_ends_at - before.bake_ends_at >= timedelta(hours=2)
    await time_skipping.sleep(300)  # about 340 s of the bake were left
    assert not (await status_of(handle)).gate_open
    await time_skipping.sleep(200)
    opened = await gate_open_at(handle, 1)
    deadline = opened.gate_deadline
    assert deadline is not None

    # The train gate's timer stops too.
    await handle.execute_update("pause", {"by": "bob"}, result_type=TrainStatus)
    await time_skipping.sleep(3 * HOUR)
    waiting = await status_of(handle)
    assert waiting.gate_open and waiting.decision is None
    resumed_train = await handle.execute_update("resume", {"by": "bob"}, result_type=TrainStatus)
    assert resumed_train.gate_deadline is not None
    assert resumed_train.gate_deadline >= deadline + timedelta(hours=3)
    await handle.execute_update("approve", {"by": "alice"}, result_type=TrainStatus)
    await time_skipping.sleep(BAKE + 60)  # wave two's bake
    await gate_open_at(handle, 2)
    await handle.signal("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == "succeeded"
    audit = [(a.action, a.by) for a in (await status_of(handle)).attempts]
    assert audit == [("approve", "alice")]  # wave two's gate; wave one's held the pauses
    children = [workflow_id_for("ecs-canary", service) for service in services]
    histories = [
        await client.get_workflow_handle(workflow_id).fetch_history()
        for workflow_id in (handle.id, *children)
    ]
    assert await replay_histories(histories) == 4


async def test_a_forged_train_resume_leaves_a_paused_deployment_paused(
    services, start_train, time_skipping
):
    """Anyone may signal `train_hold` naming the train: a deployment takes a hold only while
    the train's memo says it is the train's current one (ecs_canary.train_sent), so a resume
    the train did not send (here the very payload a genuine resume would carry) is refused."""
    client = time_skipping.client
    handle = await start_train(_baking_train(services, approval="none"))
    wave_one = services[:2]
    baking = await _all(client, wave_one, lambda s: s.bake_ends_at is not None)
    await handle.execute_update("pause", {"by": "alice"}, result_type=TrainStatus)
    await _all(client, wave_one, lambda s: s.paused is not None)

    child = client.get_workflow_handle(workflow_id_for("ecs-canary", wave_one[0]))
    await child.signal("train_hold", {"train": handle.id, "paused": None})
    await wait_until(lambda: _hold_checked(child))  # the check of the forged resume is done
    await time_skipping.sleep(2 * HOUR)
    held = await _deployment(client, wave_one[0])
    assert held.paused is not None and held.paused.by == "alice"
    assert held.bake_ends_at == baking[0].bake_ends_at  # its bake stood still

    await handle.execute_update("resume", {"by": "alice"}, result_type=TrainStatus)
    await _all(client, wave_one, lambda s: s.paused is None)
    await time_skipping.sleep(2 * BAKE)
    assert (await handle.result()).outcome == "succeeded"


async def test_a_hold_recorded_by_whoever_started_the_train_is_not_the_trains(
    services, time_skipping, train_queue
):
    """A memo given at the start is the starter's, not what the train sent: the train drops
    its records there before anything starts, so a pause forged to match them is refused."""
    client = time_skipping.client
    body = _baking_train(services, approval="none")
    train_id = f"ecs-canary-train/{body['name']}"
    paused = Paused(by="mallory", reason=None, at=datetime.now(UTC))
    forged = TrainHold(train=train_id, paused=paused)
    handle = await client.start_workflow(
        TRAIN_WORKFLOW_TYPE,
        body,
        id=train_id,
        task_queue=train_queue,
        memo={TRAIN_HOLD_MEMO: hold_digest(forged)},
        result_type=TrainResult,
    )
    wave_one = services[:2]
    await _all(client, wave_one, lambda s: s.bake_ends_at is not None)
    assert TRAIN_HOLD_MEMO not in await (await handle.describe()).memo()

    child = client.get_workflow_handle(workflow_id_for("ecs-canary", wave_one[0]))
    await child.signal("train_hold", forged.model_dump(mode="json"))
    await wait_until(lambda: _hold_checked(child))
    assert (await _deployment(client, wave_one[0])).paused is None
    await time_skipping.sleep(2 * BAKE)
    assert (await handle.result()).outcome == "succeeded"


async def _hold_checked(child: Any) -> bool:
    """The last `train_hold` the deployment received has been checked (its local activity's
    marker follows it in the history)."""
    events = (await child.fetch_history()).events
    holds = [
        index
        for index, event in enumerate(events)
        if event.workflow_execution_signaled_event_attributes.signal_name == "train_hold"
    ]
    return bool(holds) and any(event.HasField("marker_recorded_event_attributes")
                               for event in events[holds[-1]:])


@pytest.fixture
def policy_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.json"
    path.write_text("{}")
    monkeypatch.setenv(POLICY_FILE_ENV, str(path))
    monkeypatch.delenv(POLICY_ENV, raising=False)
    return path


async def test_a_freeze_window_holds_the_train_between_waves(
    services, start_train, time_skipping, policy_path
):
    handle = await start_train(_baking_train(services))
    await time_skipping.sleep(BAKE + 60)
    await gate_open_at(handle, 1)
    now = await time_skipping.get_current_time()
    ends = now + timedelta(hours=1)
    window = {"name": "launch", "start": now.isoformat(), "end": ends.isoformat()}
    policy_path.write_text(json.dumps({"freeze_windows": [window]}))
    # The approval reads the policy again: wave one rolls out, wave two waits for the window.
    await handle.execute_update("approve", {"by": "alice"}, result_type=TrainStatus)

    async def frozen() -> TrainStatus | None:
        current = await status_of(handle)
        return current if current.frozen_until is not None else None

    held = await wait_until(frozen)
    assert (held.frozen_window, held.frozen_until) == ("launch", ends)
    assert [w.state for w in held.waves] == ["succeeded", "pending"]
    assert "**FROZEN** by freeze window launch" in await details_of(handle)

    await time_skipping.sleep(HOUR + BAKE + 60)
    await gate_open_at(handle, 2)  # once the window has ended and wave two has baked
    assert await time_skipping.get_current_time() >= ends
    await handle.signal("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"
