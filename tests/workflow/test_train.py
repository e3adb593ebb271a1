"""Release trains on the time-skipping server: the real `EcsReleaseTrain` and its children, the
real `EcsCanaryDeployment`, on fake ECS activities. One decision per wave reaches every canary
of the wave as the train's; the line stops at a failure; what cannot run is refused before
anything starts; a cancel cancels the children in flight."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.common.v1 import Payloads
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.decisions import verify_decision
from activities.notifications import send_notification
from activities.train import (
    ended_deployments,
    report_to_train,
    running_deployments,
    train_sent,
)
from ecs_canary import train as train_contract
from ecs_canary.models import (
    DeploymentResult,
    DeploymentStatus,
    Stage,
    SteadyState,
    WaitSteadyInput,
)
from ecs_canary.names import (
    TRAIN_WORKFLOW_TYPE,
    WARM_UP_REFUSED,
    WARM_UP_UPDATE,
    WORKFLOW_TYPE,
    workflow_id_for,
)
from ecs_canary.policy import POLICY_FILE_ENV
from ecs_canary.signing import KEYS_ENV
from ecs_canary.train import (
    PackedTrainContinued,
    TrainContinued,
    TrainOutcome,
    TrainResult,
    TrainStatus,
)
from tests.helpers import replay_histories, wait_until
from tests.helpers.local_http import webhook_receiver
from tests.helpers.signing import Approver, write_jwks
from tests.workflow.conftest import request
from tests.workflow.fakes import OLD_ARN, FakeEcs, running_service
from tests.workflow.reading import failure_of
from workflows.canary import EcsCanaryDeployment
from workflows.train import EcsReleaseTrain

TrainHandle = WorkflowHandle[Any, TrainResult]
SERVICES = ("api", "worker", "web")


@pytest.fixture
def existing(fake_ecs: FakeEcs) -> FakeEcs:
    for service in SERVICES:
        fake_ecs.services[service] = running_service(service, desired=2)
    return fake_ecs


@pytest.fixture
async def train_queue(time_skipping: WorkflowEnvironment, fake_ecs: FakeEcs) -> AsyncIterator[str]:
    """A worker with both workflows on fake ECS, and the real decision and train checks."""
    queue = f"train-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_skipping.client,
        task_queue=queue,
        workflows=[EcsReleaseTrain, EcsCanaryDeployment],
        activities=[
            *_waits_in_order(fake_ecs),
            verify_decision,
            running_deployments,
            ended_deployments,
            train_sent,
            report_to_train,
            send_notification,
        ],
    ):
        yield queue


def _waits_in_order(fake: FakeEcs) -> list[Any]:
    """The fake activities, except that a wait scripted to fail fails only once a wait
    scripted to hang hangs: a rollout fails while another one of its wave is still rolling."""
    activities = fake.activities()
    waits = next(a for a in activities if a.__name__ == "wait_for_steady_state")

    @activity.defn(name="wait_for_steady_state")
    async def wait_for_steady_state(request: WaitSteadyInput) -> SteadyState:
        scripted = fake.waits.get((request.service, request.stage.value))
        if scripted == "fail" and "hang" in fake.waits.values():
            await fake.hanging.wait()
        result: SteadyState = await waits(request)
        return result

    return [a for a in activities if a is not waits] + [wait_for_steady_state]


def train(waves: dict[str, list[str]], **settings: Any) -> dict[str, Any]:
    """A train of `waves` (wave name -> services on cluster ecs-canary); a unique name."""
    return {
        "name": f"payments-{uuid.uuid4().hex[:6]}",
        "waves": [
            {"name": name, "deployments": [request(service_name=s) for s in services]}
            for name, services in waves.items()
        ],
        **settings,
    }


TWO_WAVES = {"one": ["api", "worker"], "two": ["web"]}


@pytest.fixture
def start_train(
    time_skipping: WorkflowEnvironment, train_queue: str
) -> Callable[[dict[str, Any]], Awaitable[TrainHandle]]:
    client: Client = time_skipping.client

    async def start(body: dict[str, Any]) -> TrainHandle:
        return await client.start_workflow(
            TRAIN_WORKFLOW_TYPE,
            body,
            id=f"ecs-canary-train/{body.get('name', 'invalid')}",
            task_queue=train_queue,
            result_type=TrainResult,
        )

    return start


async def status_of(handle: TrainHandle) -> TrainStatus:
    return await handle.query("status", result_type=TrainStatus)


async def rolling_out(client: Client, service: str) -> bool:
    """Whether the deployment of `service` has started its rolling deploy."""
    deployment = client.get_workflow_handle(workflow_id_for("ecs-canary", service))
    try:
        current = await deployment.query("status", result_type=DeploymentStatus)
    except RPCError:  # not started yet
        return False
    return current.stage == Stage.ROLLING_DEPLOY


async def gate_open_at(handle: TrainHandle, wave: int) -> TrainStatus:
    async def open_() -> TrainStatus | None:
        status = await status_of(handle)
        return status if status.wave == wave and status.gate_open else None

    return await wait_until(open_)


async def details_of(handle: WorkflowHandle[Any, Any]) -> str:
    """The run's current details, as the Web UI shows them."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


def outcomes(result: TrainResult) -> dict[str, tuple[str, TrainOutcome]]:
    return {s.service: (s.wave, s.outcome) for s in result.services}


async def child_result(client: Client, service: str) -> DeploymentResult:
    handle = client.get_workflow_handle(
        workflow_id_for("ecs-canary", service), result_type=DeploymentResult
    )
    return await handle.result()


async def test_one_decision_per_wave_decides_every_canary_as_the_trains(
    existing, start_train, time_skipping
):
    handle = await start_train(train(TWO_WAVES, approvers=["alice", "bob"]))
    status = await gate_open_at(handle, 1)
    wave = status.waves[0]
    assert [(d.service, d.stage) for d in wave.deployments] == [
        ("api", "verified"),
        ("worker", "verified"),
    ]
    assert all(d.verification and "bake time passed" in d.verification for d in wave.deployments)
    assert status.waves[1].deployments[0].stage == "not_started"
    assert status.counts["in_flight"] == 2 and status.counts["pending"] == 1
    details = await details_of(handle)  # the Web UI's summary and current details
    assert details.startswith(f"**train {status.name}: wave 1/2, 0/3 done**")
    assert "**Gate open:** decide by " in details
    assert "| worker | verified |  | the bake time passed with no alarm |" in details
    with pytest.raises(WorkflowUpdateFailedError) as refused:  # the train's own approvers
        await handle.execute_update("approve", {"by": "mallory"})
    assert "'mallory' may not decide" in str(refused.value.cause)

    await handle.execute_update("approve", {"by": "alice", "reason": "wave one looks fine"})
    await gate_open_at(handle, 2)
    assert existing.services["api"].task_definition.endswith(":2")  # wave one rolled out
    await handle.signal("approve", {"by": "bob"})
    result = await handle.result()

    assert result.outcome == "succeeded" and result.reason is None
    assert outcomes(result) == {
        "api": ("one", TrainOutcome.SUCCEEDED),
        "worker": ("one", TrainOutcome.SUCCEEDED),
        "web": ("two", TrainOutcome.SUCCEEDED),
    }
    for service, by in (("api", "alice"), ("worker", "alice"), ("web", "bob")):
        decision = (await child_result(time_skipping.client, service)).decision
        assert decision is not None
        assert (decision.action, decision.via, decision.by) == ("approve", "train", by)
    final = await status_of(handle)
    assert [w.state for w in final.waves] == ["succeeded", "succeeded"]
    assert final.waves[0].decision is not None and final.waves[0].decision.by == "alice"
    children = [workflow_id_for("ecs-canary", service) for service in SERVICES]
    histories = [
        await time_skipping.client.get_workflow_handle(workflow_id).fetch_history()
        for workflow_id in (handle.id, *children)
    ]
    assert await replay_histories(histories) == 4


# A run that continued as new leaves the test server an activity task it never closes
@pytest.mark.abandons_activity
async def test_a_train_continues_as_new_and_loses_nothing(
    existing, start_train, time_skipping, monkeypatch
):
    """With its history kept very short, the train continues as new again and again, its
    deployments in flight: each run carries on where the last left off, its decisions reach
    every canary, and it reads how each deployment ended. (No query of the train: the test
    server never answers one sent to a run that continues as new meanwhile.)"""
    monkeypatch.setattr(train_contract, "CONTINUE_AS_NEW_AFTER_EVENTS", 20)
    monkeypatch.setattr(train_contract, "CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS", 20)
    handle = await start_train(train(TWO_WAVES, approval="none"))
    latest = time_skipping.client.get_workflow_handle(handle.id, result_type=TrainResult)
    result = await _last_run_result(latest)

    assert outcomes(result) == {
        "api": ("one", TrainOutcome.SUCCEEDED),
        "worker": ("one", TrainOutcome.SUCCEEDED),
        "web": ("two", TrainOutcome.SUCCEEDED),
    }
    for service in SERVICES:
        decision = (await child_result(time_skipping.client, service)).decision
        assert decision is not None and (decision.via, decision.by) == ("train", "ecs-canary-train")
    histories = []  # from the last run back to the first
    run_id = (await latest.describe()).run_id
    while run_id:
        run = time_skipping.client.get_workflow_handle(handle.id, run_id=run_id)
        histories.append(await run.fetch_history())
        started = histories[-1].events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
    assert len(histories) >= 2 and histories[-1].run_id == handle.first_execution_run_id
    carried = [
        _unpacked(h.events[0].workflow_execution_started_event_attributes.input)
        for h in histories[:-1]
    ]
    in_flight = [
        row.service
        for continued in carried
        for wave in continued.progress.waves
        for row in wave.deployments
        if row.stage in ("canary", "verified", "promoting", "approved")
    ]
    assert in_flight, "the train continued as new with deployments in flight"
    # A continued run hears of those only by looking: from a second on, not every 10 minutes.
    sweeps = [
        e.timer_started_event_attributes.start_to_fire_timeout.ToSeconds()
        for h in histories[:-1]
        for e in h.events
        if e.HasField("timer_started_event_attributes")
    ]
    assert 1 in sweeps
    assert max(len(h.events) for h in histories) < 20 + 30  # the rest of a workflow task
    assert await replay_histories(histories) == len(histories)


def _unpacked(carried: Payloads) -> TrainContinued:
    """What a run of the train carried to the next, as its continuation's input holds it:
    packed (`PackedTrainContinued`)."""
    packed = PackedTrainContinued.model_validate_json(carried.payloads[0].data)
    return packed.unpack()


async def _last_run_result(latest: TrainHandle) -> TrainResult:
    """The result of a train that continues as new, once its last run completed (the test
    server's result() may read a continued run's history before it ends)."""

    async def completed() -> bool:
        return (await latest.describe()).status == WorkflowExecutionStatus.COMPLETED

    await wait_until(completed, timeout=60)
    return await latest.result()


@pytest.mark.abandons_activity  # as any run that continues as new, on the test server
async def test_between_two_waves_a_train_continues_as_new_with_nothing_in_flight(
    existing, start_train, time_skipping, monkeypatch
):
    """Past CONTINUE_AS_NEW_AFTER_EVENTS, the train continues as new before its next wave,
    where no deployment is in flight to signal it: Temporal takes the continuation at once (a
    signal racing it would fail the workflow task, and the worker would replay the whole run)."""
    # Wave one starts in the run's third workflow task (its history 10 events long); the second
    # wave's task comes after at least its two deployments' start and end (19 events or more;
    # 26-29 here, alone, but 25 was not reached under a full suite's load once).
    monkeypatch.setattr(train_contract, "CONTINUE_AS_NEW_AFTER_EVENTS", 16)
    handle = await start_train(train(TWO_WAVES, approval="none"))
    latest = time_skipping.client.get_workflow_handle(handle.id, result_type=TrainResult)
    assert (await _last_run_result(latest)).outcome == "succeeded"
    first = await time_skipping.client.get_workflow_handle(
        handle.id, run_id=handle.first_execution_run_id
    ).fetch_history()
    assert first.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert not any(e.HasField("workflow_task_failed_event_attributes") for e in first.events)
    carried = first.events[-1].workflow_execution_continued_as_new_event_attributes.input
    progress = _unpacked(carried).progress
    assert [wave.state for wave in progress.waves] == ["succeeded", "pending"]


async def test_a_wave_starts_at_most_starts_at_once_deployments_at_a_time(
    existing, start_train, monkeypatch
):
    """A train starts a wave's deployments a few at a time (`STARTS_AT_ONCE` started and not
    yet running), not all in one workflow task: each start waits for the train's lock on the
    server, and hundreds at once were deferred there for tens of seconds."""
    monkeypatch.setattr(train_contract, "STARTS_AT_ONCE", 2)
    handle = await start_train(train({"all": list(SERVICES)}, approval="none"))
    result = await handle.result()

    assert {s.outcome for s in result.services} == {TrainOutcome.SUCCEEDED}
    history = await handle.fetch_history()
    starting, most = 0, 0
    for event in history.events:
        if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
            starting += 1
            most = max(most, starting)
        elif event.HasField("child_workflow_execution_started_event_attributes"):
            starting -= 1
    assert most == 2


async def test_approval_once_decides_the_first_wave_and_the_rest_run_on_their_own(
    existing, start_train, time_skipping
):
    handle = await start_train(train(TWO_WAVES, approval="once"))
    await gate_open_at(handle, 1)
    await handle.execute_update("approve", {"by": "alice", "reason": "all green"})
    result = await handle.result()

    assert {s.outcome for s in result.services} == {TrainOutcome.SUCCEEDED}
    decision = (await child_result(time_skipping.client, "web")).decision
    assert decision is not None
    assert (decision.via, decision.by, decision.reason) == (
        "train",
        "alice",
        "approved once for the train, at wave one: all green",
    )


async def test_a_failed_canary_stops_the_line(existing, start_train):
    existing.waits[("workerCanary", "canary_deploy")] = "fail"
    handle = await start_train(train(TWO_WAVES))
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    assert "worker on ecs-canary: failed" in error.message
    result = TrainResult.model_validate(error.details[0])
    assert result.outcome == "stopped"
    assert outcomes(result) == {
        "api": ("one", TrainOutcome.REJECTED),
        "worker": ("one", TrainOutcome.FAILED),
        "web": ("two", TrainOutcome.NOT_STARTED),
    }
    reasons = {s.service: s.reason or "" for s in result.services}
    assert "2 task(s) of service workerCanary failed to start" in reasons["worker"]
    assert "the line stopped" in reasons["api"] and "the line stopped" in reasons["web"]
    assert existing.inputs("update_service") == []  # nothing rolled out
    deleted = {d.service for d in existing.inputs("delete_service")}
    assert deleted == {"apiCanary", "workerCanary"}


async def test_a_rejected_wave_rejects_each_canary_with_who_decided(
    existing, start_train, time_skipping
):
    handle = await start_train(train(TWO_WAVES))
    await gate_open_at(handle, 1)
    await handle.execute_update("reject", {"by": "carol", "reason": "latency up"})
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    result = TrainResult.model_validate(error.details[0])
    assert outcomes(result)["web"] == ("two", TrainOutcome.NOT_STARTED)
    decision = (await child_result(time_skipping.client, "api")).decision
    assert decision is not None
    assert (decision.action, decision.via, decision.by, decision.reason) == (
        "reject",
        "train",
        "carol",
        "latency up",
    )


@pytest.mark.abandons_activity  # the cancelled rollout's wait outlives its run
@pytest.mark.parametrize("hand_over_after", [train_contract.HAND_OVER_AFTER_STARTS, 1])
async def test_a_failed_rollout_rolls_back_and_cancels_the_waves_other_rollouts(
    existing, start_train, monkeypatch, hand_over_after
):
    """approval "none": each canary is promoted as it passes; one rollout fails, the other,
    still rolling out, is cancelled and rolled back; wave two never starts. The same when the
    run that started them handed them over to the next one (after one start here): that run
    finds the failure, and the cancelled rollout's end, by sweeping."""
    monkeypatch.setattr(train_contract, "HAND_OVER_AFTER_STARTS", hand_over_after)
    existing.waits[("api", "rolling_deploy")] = "fail"
    existing.waits[("worker", "rolling_deploy")] = "hang"
    handle = await start_train(train(TWO_WAVES, approval="none"))
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    result = TrainResult.model_validate(error.details[0])
    assert outcomes(result) == {
        "api": ("one", TrainOutcome.ROLLED_BACK),
        "worker": ("one", TrainOutcome.ROLLED_BACK),
        "web": ("two", TrainOutcome.NOT_STARTED),
    }
    restored = {u.service: u.task_definition_arn for u in existing.inputs("update_service")}
    assert restored["api"].endswith(":1") and restored["worker"].endswith(":1")


async def test_a_wave_no_person_decides_starts_each_deployment_approved_and_sends_nothing(
    existing, start_train, time_skipping
):
    """approval "none": each deployment starts with the train's approval in its memo and takes
    it once its canary passed, so no message passes between the train and its deployments but
    the end of each (`deployment_ended`): no `canary_verified`, no `train_decision`, no check
    of the train's memo, no memo written by the train, and not even its end: the train hears
    of that from Temporal, as its child's close (on a train of hundreds each message was
    another operation on the train's lock, where the next deployments' starts waited)."""
    handle = await start_train(train(TWO_WAVES, approval="none"))
    result = await handle.result()

    assert {s.outcome for s in result.services} == {TrainOutcome.SUCCEEDED}
    client = time_skipping.client
    children = [workflow_id_for("ecs-canary", service) for service in SERVICES]
    for workflow_id in children:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        assert not any(
            e.HasField("signal_external_workflow_execution_initiated_event_attributes")
            or e.HasField("workflow_execution_signaled_event_attributes")
            for e in history.events
        )
        local = _local_activities(history.events)
        assert "create_service" in local and "train_sent" not in local
        assert "report_to_train" not in local
        decision = (await child_result(client, workflow_id.rsplit("/", 1)[1])).decision
        assert decision is not None
        assert (decision.action, decision.via, decision.by) == (
            "approve",
            "train",
            "ecs-canary-train",
        )
        assert decision.reason == 'the train asks for no approval ("none")'
    train_history = await handle.fetch_history()
    assert not any(
        e.HasField("signal_external_workflow_execution_initiated_event_attributes")
        or e.HasField("workflow_properties_modified_event_attributes")
        for e in train_history.events
    )
    assert not any(
        e.HasField("workflow_execution_signaled_event_attributes") for e in train_history.events
    )
    closes = [
        e
        for e in train_history.events
        if e.HasField("child_workflow_execution_completed_event_attributes")
    ]
    assert len(closes) == len(children)
    histories = [train_history] + [
        await client.get_workflow_handle(workflow_id).fetch_history() for workflow_id in children
    ]
    assert await replay_histories(histories) == 4


def _local_activities(events: Any) -> list[str]:
    """The local activities a history recorded, by type (from their markers)."""
    return [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)[
            "activity_type"
        ]
        for e in events
        if e.HasField("marker_recorded_event_attributes")
    ]


@pytest.mark.abandons_activity  # the cancelled waits outlive their runs
async def test_a_cancelled_wave_approved_up_front_tells_a_stopped_canary_from_a_rollout(
    existing, start_train, time_skipping
):
    """Cancelled while approved up front, a deployment still in its canary is `rejected` (its
    canary deleted) and one rolling out is `rolled_back`: the train reads which from the result
    a cancelled deployment leaves in its memo."""
    existing.waits[("api", "rolling_deploy")] = "hang"
    existing.waits[("workerCanary", "canary_deploy")] = "hang"
    handle = await start_train(train(TWO_WAVES, approval="none"))
    await wait_until(lambda: rolling_out(time_skipping.client, "api"))
    status = await status_of(handle)
    assert [(d.service, d.stage) for d in status.waves[0].deployments] == [
        ("api", "approved"),
        ("worker", "approved"),
    ]
    assert status.counts["in_flight"] == 2
    await handle.cancel()
    error = await failure_of(handle)

    assert isinstance(error, CancelledError)
    final = await status_of(handle)
    assert final.result is not None
    assert outcomes(final.result) == {
        "api": ("one", TrainOutcome.ROLLED_BACK),
        "worker": ("one", TrainOutcome.REJECTED),
        "web": ("two", TrainOutcome.NOT_STARTED),
    }
    reasons = {s.service: s.reason or "" for s in final.result.services}
    assert reasons["api"].startswith("cancelled while rolling out")
    assert reasons["worker"].startswith("cancelled (")
    assert existing.services["api"].task_definition == OLD_ARN  # rolled back
    assert {d.service for d in existing.inputs("delete_service")} == {"apiCanary", "workerCanary"}


@pytest.mark.abandons_activity  # the cancelled waits outlive their runs
async def test_a_cancelled_train_cancels_the_deployments_it_handed_over(
    existing, start_train, time_skipping, monkeypatch
):
    """Wave one's deployments were handed over to the train's next run (here after one start,
    not 150): their closes land on the run that started them, which has ended, so the run that
    is cancelled finds them closed by sweeping, and reads from each how it ended."""
    monkeypatch.setattr(train_contract, "HAND_OVER_AFTER_STARTS", 1)
    existing.waits[("api", "rolling_deploy")] = "hang"
    existing.waits[("workerCanary", "canary_deploy")] = "hang"
    handle = await start_train(train(TWO_WAVES, approval="none"))
    latest = time_skipping.client.get_workflow_handle(handle.id, result_type=TrainResult)

    async def handed_over_and_rolling_out() -> bool:
        if (await latest.describe()).run_id == handle.first_execution_run_id:
            return False
        return await rolling_out(time_skipping.client, "api")

    await wait_until(handed_over_and_rolling_out)
    await latest.cancel()
    error = await failure_of(latest)

    assert isinstance(error, CancelledError)
    result = (await status_of(latest)).result
    assert result is not None
    assert outcomes(result) == {
        "api": ("one", TrainOutcome.ROLLED_BACK),
        "worker": ("one", TrainOutcome.REJECTED),
        "web": ("two", TrainOutcome.NOT_STARTED),
    }
    assert existing.services["api"].task_definition == OLD_ARN  # rolled back
    assert {d.service for d in existing.inputs("delete_service")} == {"apiCanary", "workerCanary"}


async def test_roll_back_train_puts_back_what_the_train_rolled_out_newest_first(
    existing, start_train
):
    del existing.services["worker"]  # a first deployment: putting it back removes it
    existing.waits[("webCanary", "canary_deploy")] = "fail"
    waves = {"one": ["api"], "two": ["worker"], "three": ["web"]}
    handle = await start_train(train(waves, approval="none", on_failure="roll_back_train"))
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    result = TrainResult.model_validate(error.details[0])
    assert outcomes(result) == {
        "api": ("one", TrainOutcome.PUT_BACK),
        "worker": ("two", TrainOutcome.PUT_BACK),
        "web": ("three", TrainOutcome.FAILED),
    }
    reasons = {s.service: s.reason or "" for s in result.services}
    assert reasons["api"].startswith("put back to myapp-task:1 (desired 2): the line stopped: web")
    assert reasons["worker"].startswith("removed (the train had created it)")
    api = existing.services["api"]
    assert (api.task_definition, api.desired_count) == (OLD_ARN, 2)
    assert "worker" not in existing.services
    watched = {("delete_service", "worker"), ("update_service", "api")}
    put_back = [
        (name, arg.service)
        for name, arg in existing.calls
        if (name, getattr(arg, "service", None)) in watched
    ]
    # api's rollout, then (newest first) worker removed before api is put back
    assert put_back == [
        ("update_service", "api"),
        ("delete_service", "worker"),
        ("update_service", "api"),
    ]


async def test_a_signed_approval_of_the_train_is_recorded_signed_by_each_canary(
    existing, start_train, time_skipping, tmp_path, monkeypatch
):
    """`require_signed_decisions`: an unsigned approval is refused, a token signed for the
    train's run decides, and each canary records the token's subject as who decided."""
    alice = Approver("alice-key", owner="alice", issuer=None)
    monkeypatch.setenv(KEYS_ENV, str(write_jwks(tmp_path / "approvers.json", alice)))
    monkeypatch.delenv(POLICY_FILE_ENV, raising=False)
    handle = await start_train(train({"one": ["api"]}, require_signed_decisions=True))
    await gate_open_at(handle, 1)
    with pytest.raises(WorkflowUpdateFailedError) as unsigned:
        await handle.execute_update("approve", {"by": "alice"})
    assert "a signed decision is required" in str(unsigned.value.cause)
    assert f"python starter.py train approve|reject {handle.id} --run-id" in str(
        unsigned.value.cause
    )
    token = alice.token(handle.id, "approve", run_id=handle.result_run_id or "")
    await handle.execute_update("approve", {"token": token})
    assert (await handle.result()).outcome == "succeeded"
    decision = (await child_result(time_skipping.client, "api")).decision
    assert decision is not None and (decision.by, decision.via, decision.signed) == (
        "alice",
        "train",
        True,
    )


async def test_a_policy_that_requires_approval_gates_a_train_that_asks_for_none(
    existing, start_train, tmp_path, monkeypatch
):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"require_approval": True}))
    monkeypatch.setenv(POLICY_FILE_ENV, str(policy))
    handle = await start_train(train({"one": ["api"]}, approval="none"))
    await gate_open_at(handle, 1)
    await handle.execute_update("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"


async def test_a_canary_of_a_train_takes_no_persons_approval(existing, start_train, time_skipping):
    handle = await start_train(train({"one": ["api"]}))
    await gate_open_at(handle, 1)
    child = time_skipping.client.get_workflow_handle(workflow_id_for("ecs-canary", "api"))
    assert f"**Release train:** verified; waits for the decision of {handle.id}" in (
        await details_of(child)
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await child.execute_update("approve", {"by": "alice"})
    assert "decided by its release train" in str(refused.value.cause)
    await handle.execute_update("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"


async def test_the_trains_notifications_are_delivered_by_the_deployments_notifier(
    existing, start_train
):
    """A wave's gate opening and its decision, once per wave, then the train's end: each as
    the JSON document the deployment's notifier posts, with the train's own commands."""
    with webhook_receiver() as hook:
        handle = await start_train(
            train(TWO_WAVES, notifications=[{"url": hook.url(), "format": "json"}])
        )
        await gate_open_at(handle, 1)
        await handle.execute_update("approve", {"by": "alice"})
        await gate_open_at(handle, 2)
        await handle.execute_update("reject", {"by": "bob", "reason": "errors up"})
        error = await failure_of(handle)
        assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
        status = await status_of(handle)
        assert [(n.event, n.state) for n in status.notifications] == [
            ("gate_open", "sent"),
            ("decided", "sent"),
            ("gate_open", "sent"),
            ("decided", "sent"),
            ("finished", "sent"),
        ]

    assert hook.events() == ["gate_open", "decided", "gate_open", "decided", "finished"]
    texts = [r.body["text"] for r in hook.received]
    name = status.name
    assert texts == [
        f"train {name}, wave one (1/2): every canary passed; the wave waits for approval",
        f"train {name}, wave one (1/2): approved by alice",
        f"train {name}, wave two (2/2): every canary passed; the wave waits for approval",
        f"train {name}, wave two (2/2): rejected (the line stops) by bob",
        f"train {name}: stopped",
    ]
    approve = hook.received[0].body["commands"]["approve"][1]
    assert approve.startswith(f"python starter.py train approve {handle.id} --run-id ")
    keys = {r.headers["idempotency-key"] for r in hook.received}
    assert len(keys) == 5  # each wave's events are their own


async def test_a_forged_train_decision_is_refused(existing, start_train, time_skipping):
    """Anyone may signal `train_decision` naming the train: the canary asks the train whether it
    sent that decision, and takes only the one it did."""
    handle = await start_train(train({"one": ["api"]}))
    await gate_open_at(handle, 1)
    child = time_skipping.client.get_workflow_handle(workflow_id_for("ecs-canary", "api"))
    forged = {"train": handle.id, "wave": "one", "action": "approve", "by": "mallory"}
    await child.signal("train_decision", forged)
    await handle.execute_update("approve", {"by": "alice"})
    assert (await handle.result()).outcome == "succeeded"

    decision = (await child_result(time_skipping.client, "api")).decision
    assert decision is not None and (decision.via, decision.by) == ("train", "alice")
    events = (await child.fetch_history()).events
    signalled = [e for e in events if e.HasField("workflow_execution_signaled_event_attributes")]
    by = [
        json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data)["by"]
        for e in signalled
        if e.workflow_execution_signaled_event_attributes.signal_name == "train_decision"
    ]
    assert by == ["mallory", "alice"]  # both came; only the train's was taken


async def test_a_gate_nobody_decides_times_out_into_on_timeout(existing, start_train):
    handle = await start_train(train(TWO_WAVES, timeout_seconds=7200))
    error = await failure_of(handle)  # the server skips the two hours
    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    assert "no decision within 2h" in error.message
    result = TrainResult.model_validate(error.details[0])
    assert {s.outcome for s in result.services if s.wave == "one"} == {TrainOutcome.REJECTED}


async def test_a_cancelled_train_cancels_its_deployments_in_flight(
    existing, start_train, time_skipping
):
    handle = await start_train(train(TWO_WAVES))
    await gate_open_at(handle, 1)
    await handle.cancel()
    error = await failure_of(handle)

    assert isinstance(error, CancelledError)
    for service in ("api", "worker"):
        child = time_skipping.client.get_workflow_handle(workflow_id_for("ecs-canary", service))
        assert isinstance(await failure_of(child), CancelledError)
    assert {d.service for d in existing.inputs("delete_service")} == {"apiCanary", "workerCanary"}
    final = await status_of(handle)
    assert final.outcome == "cancelled" and final.result is not None
    assert outcomes(final.result)["web"] == ("two", TrainOutcome.NOT_STARTED)


async def test_a_deployment_terminated_by_hand_is_found_by_the_sweep_and_stops_the_line(
    existing, start_train, time_skipping
):
    """A terminated run says nothing to its train: the train's own 10-minute sweep finds it,
    however many reports woke the train meanwhile."""
    handle = await start_train(train(TWO_WAVES))
    await gate_open_at(handle, 1)
    worker = time_skipping.client.get_workflow_handle(workflow_id_for("ecs-canary", "worker"))
    await worker.terminate(reason="by hand")
    assert (await status_of(handle)).waves[0].deployments[1].outcome is None  # not seen yet
    await time_skipping.sleep(11 * 60)
    row = (await status_of(handle)).waves[0].deployments[1]
    assert row.outcome == TrainOutcome.FAILED
    assert row.reason is not None and "Terminated" in row.reason, row.reason

    error = await failure_of(handle)
    assert isinstance(error, ApplicationError) and error.type == "TrainStopped"
    final = await status_of(handle)
    assert final.result is not None
    assert outcomes(final.result)["worker"] == ("one", TrainOutcome.FAILED)


# --- Refused before anything starts -----------------------------------------------------


async def test_a_service_named_twice_is_refused_before_anything_starts(existing, start_train):
    handle = await start_train(train({"one": ["api"], "two": ["web", "api"]}))
    error = await failure_of(handle)
    assert isinstance(error, ApplicationError) and error.type == "Refused"
    assert "service api on cluster ecs-canary is named twice in this train (wave one, two)" in (
        error.message
    )
    assert existing.calls == []


@pytest.mark.own_clock
async def test_a_service_being_deployed_already_is_refused(existing, start_train, time_skipping):
    """A run of `web` is open (on a queue no worker polls: it stays open, doing nothing). Its
    first workflow task, never taken, holds the test server's clock even after the terminate
    at the end (a later test's timer on a shared server would then wait in real time): its
    own server."""
    alone = await time_skipping.client.start_workflow(
        WORKFLOW_TYPE,
        request(service_name="web"),
        id=workflow_id_for("ecs-canary", "web"),
        task_queue=f"nobody-polls-{uuid.uuid4().hex[:8]}",
    )
    handle = await start_train(train(TWO_WAVES))
    error = await failure_of(handle)
    assert isinstance(error, ApplicationError) and error.type == "Refused"
    assert "already being deployed: ecs-canary/ecs-canary/web" in error.message
    assert {s.outcome for s in TrainResult.model_validate(error.details[0]).services} == {
        TrainOutcome.NOT_STARTED
    }
    assert existing.inputs("create_service") == []
    await alone.terminate()


async def test_an_invalid_train_fails_at_once_saying_why(existing, start_train):
    body = train(TWO_WAVES, approval="sometimes", max_paralel=3)
    error = await failure_of(await start_train(body))
    assert isinstance(error, ApplicationError) and error.type == "InvalidRequest"
    assert "Invalid train request: 2 validation error(s)" in error.message
    assert "max_paralel: Extra inputs are not permitted" in error.message
    assert existing.calls == []


async def test_a_lone_deployment_naming_a_train_is_refused(existing, time_skipping, train_queue):
    handle = await time_skipping.client.start_workflow(
        WORKFLOW_TYPE,
        request(service_name="api", train="ecs-canary-train/payments"),
        id=workflow_id_for("ecs-canary", "api"),
        task_queue=train_queue,
    )
    error = await failure_of(handle)
    assert isinstance(error, ApplicationError) and error.type == "InvalidRequest"
    assert "is set by a release train" in error.message
    assert existing.calls == []


async def test_a_train_refuses_the_warm_up_and_nothing_changes(existing, start_train):
    """A worker that starts sends every open run `warm_up` (ecs_canary.warm_up): a train at its
    gate refuses it as a deployment does, its status as it was. (That the refusal leaves no
    event holds on the real server, tests/e2e/test_warm_up.py: the time-skipping server writes
    the workflow task of a refused Update to the history.)"""
    handle = await start_train(train({"one": ["api"]}))
    before = await gate_open_at(handle, 1)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(WARM_UP_UPDATE)

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == WARM_UP_REFUSED
    assert await status_of(handle) == before
