"""Upgrading the worker under an open gate with Worker Versioning, as the README's "Upgrading
the worker" tells an operator to: build 1 (`python worker.py` with ECS_CANARY_BUILD_ID=1) holds
a run at its gate; build 2, whose workflow issues one more command before its first stage (a
change released without a patch), starts beside it and is made current with the `temporal`
CLI. The open run finishes on build 1 and a new run goes to build 2, both without a
nondeterminism error, and build 1 then shows drained, ready to be stopped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RawValue, VersioningBehavior, WorkerDeploymentVersion
from temporalio.workflow import NondeterminismError

from ecs_canary.models import DeploymentResult
from ecs_canary.names import WORKFLOW_TYPE
from ecs_canary.temporal import DATA_CONVERTER
from ecs_canary.versioning import DEFAULT_DEPLOYMENT_NAME
from tests.helpers import (
    DevServer,
    approve_at_gate,
    existing_service,
    in_process_worker,
    replay_histories,
    replayer,
    start,
    temporal_cli,
    wait_for_stage,
    wait_until,
    worker_process,
)
from workflows.canary import EcsCanaryDeployment
from workflows.payloads import NO_ARGUMENT
from workflows.train import EcsReleaseTrain

# A version's drainage is checked every VersionDrainageStatusRefreshInterval (3 minutes by
# default), after a grace period for visibility to catch up (also 3 minutes): seconds here.
QUICK_DRAINAGE = [
    "--dynamic-config-value",
    'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
    "--dynamic-config-value",
    'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
]


# Outside the sandbox, which would re-import this test module (and pytest) for every run.
@workflow.defn(name=WORKFLOW_TYPE, sandboxed=False)
class NextBuildDeployment(EcsCanaryDeployment):
    """Build 2's deployment: today's, with a timer before its first stage. A run of either
    build does not replay on the other (checked below): without versioning, this change would
    fail every run open when it was released."""

    @workflow.run
    async def run(self, request: RawValue = NO_ARGUMENT) -> DeploymentResult:
        await workflow.sleep(timedelta(milliseconds=10))
        return await super().run(request)


BUILD_1 = [EcsCanaryDeployment, EcsReleaseTrain]
BUILD_2 = [NextBuildDeployment, EcsReleaseTrain]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[DevServer]:
    """A dev server of this test's own, whose drainage status follows within seconds."""
    dev_server = DevServer(
        tmp_path / "temporal.db", tmp_path / "server.log", extra_args=QUICK_DRAINAGE
    )
    await dev_server.start()
    yield dev_server
    await dev_server.stop()


async def _made_current(client: Client, build_id: str) -> bool:
    """`temporal worker deployment set-current-version`: refused until the server has seen the
    build's worker poll."""
    done = await temporal_cli(
        client,
        "worker",
        "deployment",
        "set-current-version",
        "--deployment-name",
        DEFAULT_DEPLOYMENT_NAME,
        "--build-id",
        build_id,
        "--yes",
    )
    return done.code == 0


async def _drainage_is(client: Client, build_id: str, drainage: str) -> bool:
    """`temporal worker deployment describe-version` shows the build's drainage status."""
    done = await temporal_cli(
        client,
        "worker",
        "deployment",
        "describe-version",
        "--deployment-name",
        DEFAULT_DEPLOYMENT_NAME,
        "--build-id",
        build_id,
        "--output",
        "json",
    )
    assert done.code == 0, done.err
    return json.loads(done.out)["drainageInfo"]["drainageStatus"] == drainage


async def _lists_open(client: Client, build_id: str, workflow_ids: list[str]) -> bool:
    """The README's `temporal workflow list` of the runs still open on a build lists these."""
    version = f"{DEFAULT_DEPLOYMENT_NAME}:{build_id}"
    query = f"TemporalWorkerDeploymentVersion='{version}' AND ExecutionStatus='Running'"
    done = await temporal_cli(client, "workflow", "list", "--query", query, "--output", "json")
    assert done.code == 0, done.err
    listed = [run["execution"]["workflowId"] for run in json.loads(done.out or "[]")]
    return listed == workflow_ids


async def _pinned_to(handle: WorkflowHandle) -> tuple[str, VersioningBehavior]:
    """The build the run is pinned to, as the server records it."""
    described = await handle.describe()
    info = described.raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id, VersioningBehavior(info.behavior)


async def _replay_failure(workflows: list[type], handle: WorkflowHandle) -> Exception | None:
    """Why the run's history does not replay on `workflows`; None: it does."""
    history = await handle.fetch_history()
    replayed = await replayer(workflows).replay_workflow(history, raise_on_replay_failure=False)
    return replayed.replay_failure


async def _failed_tasks(handle: WorkflowHandle) -> list:
    history = await handle.fetch_history()
    return [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


async def test_an_open_run_finishes_on_its_build_while_new_runs_go_to_the_next(
    server, task_queue, requests, ecs, tmp_path
):
    client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
    existing_service(ecs, requests)
    existing_service(ecs, requests, service="payments")
    build_1 = {"ECS_CANARY_BUILD_ID": "1"}
    with worker_process(server.address, task_queue, tmp_path / "worker-1.log", **build_1):
        await wait_until(lambda: _made_current(client, "1"), timeout=60)
        open_run = await start(client, task_queue, requests.raw())
        await wait_for_stage(open_run, "verification", gate_open=True, timeout=120)

        version_2 = WorkerDeploymentVersion(DEFAULT_DEPLOYMENT_NAME, "2")
        async with in_process_worker(client, task_queue, BUILD_2, version=version_2):
            await wait_until(lambda: _made_current(client, "2"), timeout=60)
            new_run = await start(client, task_queue, requests.raw(service="payments"))
            # The open run holds build 1: draining, not drained.
            await wait_until(lambda: _drainage_is(client, "1", "draining"), timeout=30)
            await wait_until(lambda: _lists_open(client, "1", [open_run.id]), timeout=30)

            new_result = await approve_at_gate(new_run, timeout=120)
            old_result = await approve_at_gate(open_run, timeout=120)
            await wait_until(lambda: _drainage_is(client, "1", "drained"), timeout=60)

    assert (old_result.outcome, new_result.outcome) == ("succeeded", "succeeded")
    assert await _pinned_to(open_run) == ("1", VersioningBehavior.PINNED)
    assert await _pinned_to(new_run) == ("2", VersioningBehavior.PINNED)
    assert await _failed_tasks(open_run) == [] and await _failed_tasks(new_run) == []
    # Each run replays on the build it ran on, and only there.
    assert await replay_histories([await open_run.fetch_history()]) == 1  # today's code
    assert await _replay_failure(BUILD_2, new_run) is None
    assert isinstance(await _replay_failure(BUILD_2, open_run), NondeterminismError)
    assert isinstance(await _replay_failure(BUILD_1, new_run), NondeterminismError)
