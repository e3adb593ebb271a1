"""Every ECS activity run twice in a row changes nothing the second time: the second run is a
retry (attempt 2), as after a worker crash, and must never duplicate a revision or a service."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.aws import AwsClients
from activities.ecs import EcsActivities
from ecs_canary.models import (
    DeleteServiceInput,
    RegisterTaskDefinitionInput,
    Stage,
    UpdateServiceInput,
    WaitInactiveInput,
)
from tests.helpers import (
    CLUSTER,
    REGION,
    canary_create_input,
    canary_wait_input,
    describe,
    existing_service,
)


@pytest.fixture
def activities(ecs_state) -> EcsActivities:
    return EcsActivities(AwsClients(ecs_calls_per_second=100))


def _twice(fn, arg):
    env = ActivityEnvironment()
    first = env.run(fn, arg)
    env.info = dataclasses.replace(env.info, attempt=2)
    return first, env.run(fn, arg)


def _polling() -> dict:
    """A wait's timing fields: poll fast, give up late, take ECS events from now on."""
    return {"poll_interval_seconds": 0.1, "timeout_seconds": 30, "events_since": datetime.now(UTC)}


def test_each_activity_twice_changes_nothing_more(activities, requests, ecs):
    old_arn = existing_service(ecs, requests)
    raw = requests.raw()
    where = {"region": REGION, "cluster": CLUSTER}
    canary = {**where, "service": "myappCanary"}

    first, second = _twice(
        activities.register_task_definition,
        RegisterTaskDefinitionInput(
            **canary,
            stage=Stage.CANARY_DEPLOY,
            task_definition=raw["task_definition"],
            run_id="run-1",
        ),
    )
    assert first == second
    revisions = ecs.list_task_definitions(familyPrefix="myapp-task")["taskDefinitionArns"]
    assert revisions == [old_arn, first.arn]

    create = canary_create_input(
        requests, ecs, task_definition_arn=first.arn, tags={"owner": "test"}
    )
    created, again = _twice(activities.create_service, create)
    assert (created.changed, again.changed) == (True, False)
    assert created.arn == again.arn

    steady, steady_again = _twice(
        activities.wait_for_steady_state, canary_wait_input(create, **_polling())
    )
    assert steady.deployment_id == steady_again.deployment_id

    deleted, deleted_again = _twice(
        activities.delete_service, DeleteServiceInput(**canary, stage=Stage.CANARY_DELETE)
    )
    assert (deleted.deleted, deleted_again.deleted) == (True, False)
    _twice(
        activities.wait_for_inactive,
        WaitInactiveInput(**canary, stage=Stage.CANARY_DELETE, **_polling()),
    )
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"

    update = UpdateServiceInput(
        **where,
        service="myapp",
        stage=Stage.ROLLING_DEPLOY,
        task_definition_arn=first.arn,
        desired_count=3,
    )
    updated, updated_again = _twice(activities.update_service, update)
    assert (updated.changed, updated_again.changed) == (True, False)
    main = describe(ecs, "myapp")
    assert len(main["deployments"]) <= 2 and main["desiredCount"] == 3


def test_a_first_attempt_that_finds_its_service_created_is_done(activities, requests, ecs):
    """ECS refuses a second create as 'not idempotent'; if the service is ours, that is done."""
    create = canary_create_input(requests, ecs)
    env = ActivityEnvironment()
    assert env.run(activities.create_service, create).changed
    assert not env.run(activities.create_service, create).changed


def test_a_retried_wait_does_not_log_events_again(activities, requests, ecs, emulator, logs):
    """The wait's heartbeat details carry the events it logged; a retry given them (as Temporal
    gives a retried attempt its last heartbeat) logs none of them again. The canary's task takes
    a second to start, so the wait logs events and heartbeats before it is steady: at test
    speed, a wait that began late (a loaded machine) found it steady at its first look and
    never heartbeat (the next test's `ecs_state` puts the speed back)."""
    emulator.admin.settings(task_start_seconds=1.0)
    create = canary_create_input(requests, ecs)
    env = ActivityEnvironment()
    env.run(activities.create_service, create)
    heartbeats: list = []
    env.on_heartbeat = lambda *details: heartbeats.append(details[0])
    wait = canary_wait_input(
        create, timeout_seconds=30, events_since=datetime(2000, 1, 1, tzinfo=UTC)
    )
    env.run(activities.wait_for_steady_state, wait)
    first_events = [line for line in logs.lines() if line.startswith("# AWS Event: ")]
    assert first_events and heartbeats

    retry = ActivityEnvironment()
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=[heartbeats[-1]])
    logs.records.clear()
    retry.run(activities.wait_for_steady_state, wait)
    again = [line for line in logs.lines() if line.startswith("# AWS Event: ")]
    assert not set(again) & set(heartbeats[-1]["recent_events"])


def test_a_cancelled_wait_stops_at_once(activities, requests, ecs):
    """Cancellation (the run was cancelled or rejected) ends a wait within its poll: the
    thread ends, so no more ECS calls follow it."""
    create = canary_create_input(requests, ecs, image="nginx:slow")
    env = ActivityEnvironment()
    env.run(activities.create_service, create)
    wait = canary_wait_input(create, timeout_seconds=60, events_since=datetime.now(UTC))
    outcome: list[BaseException] = []
    polled = threading.Event()
    env.on_heartbeat = lambda *_: polled.set()

    def run_wait() -> None:
        try:
            env.run(activities.wait_for_steady_state, wait)
        except BaseException as err:  # noqa: BLE001 - the test inspects it
            outcome.append(err)

    waiter = threading.Thread(target=run_wait)
    waiter.start()
    assert polled.wait(30), "the wait never polled"
    # ActivityEnvironment.cancel iterates its running activities while the cancelled one,
    # quick to stop, removes itself from another thread; the cancel is delivered either way.
    with contextlib.suppress(RuntimeError):
        env.cancel()
    waiter.join(timeout=5)
    assert not waiter.is_alive(), "the cancelled wait kept running"
    assert outcome and isinstance(outcome[0], CancelledError)
