"""The metrics workflow code records (workflows/metrics.py), on the time-skipping server with
fake activities: a worker whose client's runtime serves Prometheus metrics, read back as
Prometheus would. A canary analysis's verdict, a gate that timed out (its whole wait, in
workflow time), a release train's outcome; each counted once, under the worker's task queue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import Client
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
from ecs_canary import telemetry
from ecs_canary.models import DeploymentResult
from ecs_canary.names import (
    TRAIN_WORKFLOW_TYPE,
    WORKFLOW_TYPE,
    train_workflow_id_for,
    workflow_id_for,
)
from ecs_canary.temporal import DATA_CONVERTER
from ecs_canary.train import TrainResult
from tests.helpers import Scrape, free_port, scrape
from tests.workflow.conftest import request
from tests.workflow.fake_analysis import FakeJudge
from tests.workflow.fakes import FakeEcs, running_service
from tests.workflow.test_canary_analysis import with_analysis
from workflows.canary import EcsCanaryDeployment
from workflows.train import EcsReleaseTrain


@dataclass(frozen=True)
class Metered:
    client: Client  # the test's (time-skipping) client, which starts and awaits the runs
    task_queue: str
    url: str

    def read(self) -> Scrape:
        return scrape(self.url)

    def value(self, name: str, **labels: str) -> float:
        return self.read().value(name, task_queue=self.task_queue, **labels)


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
async def metered_client(
    shared_time_skipping: WorkflowEnvironment, metrics_port: int
) -> AsyncIterator[Client]:
    """A client of the time-skipping server on a runtime serving metrics (one per module: a
    runtime's endpoint lives as long as the runtime)."""
    target = shared_time_skipping.client.service_client.config.target_host
    runtime = telemetry.prometheus_runtime(f"127.0.0.1:{metrics_port}")
    yield await Client.connect(target, data_converter=DATA_CONVERTER, runtime=runtime)


@pytest.fixture
async def metered(
    shared_time_skipping: WorkflowEnvironment,
    metered_client: Client,
    metrics_port: int,
    fake_ecs: FakeEcs,
    fake_judge: FakeJudge,
) -> AsyncIterator[Metered]:
    """Both workflows and the fake activities on a metered worker and a queue of this test's."""
    fake_ecs.services["myapp"] = running_service("myapp")
    fake_ecs.services["api"] = running_service("api", desired=2)
    task_queue = f"metrics-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        metered_client,
        task_queue=task_queue,
        workflows=[EcsCanaryDeployment, EcsReleaseTrain],
        activities=[
            *fake_ecs.activities(),
            fake_judge.activity(),
            verify_decision,
            running_deployments,
            ended_deployments,
            train_sent,
            report_to_train,
            send_notification,
        ],
    ):
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        yield Metered(shared_time_skipping.client, task_queue, url)


async def _run(metered: Metered, workflow_type: str, body: dict[str, Any], run_id: str) -> Any:
    """Start a run on the metered worker's queue and wait for its result."""
    handle = await metered.client.start_workflow(
        workflow_type,
        body,
        id=run_id,
        task_queue=metered.task_queue,
        result_type=TrainResult if workflow_type == TRAIN_WORKFLOW_TYPE else DeploymentResult,
    )
    return await handle.result()


async def _deploy(metered: Metered, body: dict[str, Any]) -> DeploymentResult:
    run_id = f"{workflow_id_for('ecs-canary', 'myapp')}-{uuid.uuid4().hex[:6]}"
    result: DeploymentResult = await _run(metered, WORKFLOW_TYPE, body, run_id)
    return result


async def test_a_passing_analysis_counts_its_verdict_and_no_gate_wait(metered: Metered):
    result = await _deploy(metered, with_analysis(require_approval=False))

    assert result.outcome == "succeeded"
    assert metered.value(telemetry.ANALYSIS_VERDICTS, verdict="pass") == 1
    assert metered.value(telemetry.ANALYSIS_VERDICTS) == 1
    assert metered.value(telemetry.DEPLOYMENTS_STARTED) == 1
    assert metered.value(telemetry.DEPLOYMENTS_ENDED, outcome="succeeded") == 1
    # It approved by itself: no gate opened for a person, so no wait was recorded.
    assert metered.value(f"{telemetry.GATE_WAIT}_count") == 0


async def test_a_gate_that_times_out_records_its_whole_wait(metered: Metered):
    body = request(verification={"timeout_seconds": 600, "on_timeout": "reject"})
    result = await _deploy(metered, body)

    assert result.outcome == "rejected"
    waits = {"decision": "reject", "via": "timeout"}
    assert metered.value(f"{telemetry.GATE_WAIT}_count", **waits) == 1
    # Workflow time: the timer's 600 s, and the moments between the gate opening and it.
    assert 600 <= metered.value(f"{telemetry.GATE_WAIT}_sum", **waits) < 601
    assert metered.value(telemetry.DEPLOYMENTS_ENDED, outcome="rejected") == 1
    assert metered.value(telemetry.ANALYSIS_VERDICTS) == 0


async def test_a_train_counts_its_outcome_and_its_deployment(metered: Metered):
    name = f"payments-{uuid.uuid4().hex[:6]}"
    body = {
        "name": name,
        "approval": "none",
        "waves": [{"name": "one", "deployments": [request(service_name="api")]}],
    }
    result = await _run(metered, TRAIN_WORKFLOW_TYPE, body, train_workflow_id_for(name))

    assert result.outcome == "succeeded"
    train_labels = {"workflow_type": TRAIN_WORKFLOW_TYPE}
    assert metered.value(telemetry.TRAINS_ENDED, outcome="succeeded", **train_labels) == 1
    assert metered.value(telemetry.TRAINS_ENDED) == 1
    # Its deployment is a deployment like any other.
    assert metered.value(telemetry.DEPLOYMENTS_ENDED, outcome="succeeded") == 1
