"""A release train hands a large wave's deployments over to its next run, on the dev server
with the real worker and the emulator: the run that started them continues as new before they
end, so Temporal records none of their closes on a run of the train, and the next run reads
how each ended from Temporal's visibility (a listing of the train's closed children). Here the
hand-over comes after 2 starts instead of 150 (ecs_canary.train.HAND_OVER_AFTER_STARTS)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.train import ended_deployments
from ecs_canary import train as train_contract
from ecs_canary.train import (
    DeploymentRun,
    DeploymentRunEnd,
    EndedDeploymentsInput,
    TrainOutcome,
    TrainStatus,
)
from tests.helpers import existing_service

SERVICES = ("api", "worker", "web")


async def _runs_of(client, workflow_id: str) -> list[History]:
    """Every run of the train, from the last back to the first."""
    histories = []
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        histories.append(
            await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        )
        started = histories[-1].events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
    return histories


def _ended_deployments_calls(history: History) -> list[tuple[dict, list[dict]]]:
    """Each `ended_deployments` activity of a run: its input and its result."""
    scheduled = {}
    calls = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_type.name == "ended_deployments":
                scheduled[event.event_id] = json.loads(attributes.input.payloads[0].data)
        if event.HasField("activity_task_completed_event_attributes"):
            attributes = event.activity_task_completed_event_attributes
            if attributes.scheduled_event_id in scheduled:
                result = json.loads(attributes.result.payloads[0].data)
                calls.append((scheduled[attributes.scheduled_event_id], result))
    return calls


async def _ended_as_the_train(
    client: Client, train: str, runs: list[DeploymentRun], since: datetime
) -> list[DeploymentRunEnd]:
    """`ended_deployments` as a sweep of the train `train` runs it: a listing of its closed
    children since `since`."""
    environment = ActivityEnvironment(client=client)
    environment.info = dataclasses.replace(environment.info, workflow_id=train)
    asked = EndedDeploymentsInput(runs=runs, wait=False, closed_since=since)
    return await environment.run(ended_deployments, asked)


@asynccontextmanager
async def _running_elsewhere(client: Client, task_queue: str) -> AsyncIterator[DeploymentRun]:
    """A run that is no child of any train and never ends (no worker polls its queue)."""
    handle = await client.start_workflow(
        "NobodyRunsThis", id=f"elsewhere-{uuid.uuid4().hex[:6]}", task_queue=f"{task_queue}-idle"
    )
    assert handle.result_run_id is not None
    try:
        yield DeploymentRun(workflow_id=handle.id, run_id=handle.result_run_id)
    finally:
        await handle.terminate()


# monkeypatch first: it is undone last, after `runs` has replayed the train's runs.
async def test_a_wave_handed_over_is_read_from_the_listing_of_closes(
    monkeypatch, worker, requests, ecs, client, runs, task_queue
):
    monkeypatch.setattr(train_contract, "HAND_OVER_AFTER_STARTS", 2)
    for service in SERVICES:
        existing_service(ecs, requests, service=service, desired=1)
    name = f"payments-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "waves": [
            {"name": "all", "deployments": [requests.raw(service=s, desired=1) for s in SERVICES]}
        ],
        "approval": "none",
    }
    handle = await runs.start_train(body)
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert {s.service: s.outcome for s in result.services} == dict.fromkeys(
        SERVICES, TrainOutcome.SUCCEEDED
    )
    histories = await _runs_of(client, handle.id)
    first = histories[-1]
    assert len(histories) >= 2
    started = [
        e.child_workflow_execution_started_event_attributes.workflow_execution
        for e in first.events
        if e.HasField("child_workflow_execution_started_event_attributes")
    ]
    assert len(started) == len(SERVICES)
    assert first.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    # No run of the train recorded the close of a deployment: each landed on the first run,
    # which had ended.
    closes = [
        e
        for h in histories
        for e in h.events
        if e.HasField("child_workflow_execution_completed_event_attributes")
        or e.HasField("child_workflow_execution_failed_event_attributes")
    ]
    assert closes == []
    # The later runs read every end from listings (closed_since: the wave's start).
    listings = [call for h in histories[:-1] for call in _ended_deployments_calls(h)]
    assert listings and all(arguments["closed_since"] for arguments, _ in listings)
    read = sorted(end["workflow_id"] for _, ends in listings for end in ends)
    assert read == sorted(s.workflow_id for s in result.services)
    status = await handle.query("status", result_type=TrainStatus)
    assert status.waves[0].state == "succeeded" and status.waves[0].began is not None
    began = status.waves[0].began

    # The listing itself: of the runs asked about, those the train started and Temporal lists
    # as closed since the time given, with their results; a run that is no child of the train
    # and still running is left out, and so is every close before that time (a describe of
    # each run would have found them all).
    closed = [DeploymentRun(workflow_id=run.workflow_id, run_id=run.run_id) for run in started]
    async with _running_elsewhere(client, task_queue) as stranger:
        asked = [*closed, stranger]
        found = await _ended_as_the_train(client, handle.id, asked, since=began)
        assert sorted(end.workflow_id for end in found) == read
        assert all(end.result and end.result.outcome == "succeeded" for end in found)
        later = datetime.now(UTC) + timedelta(seconds=1)
        assert await _ended_as_the_train(client, handle.id, asked, since=later) == []
