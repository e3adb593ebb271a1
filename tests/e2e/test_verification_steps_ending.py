"""Verification steps that end early, through the real workflow, the real worker and the ECS
emulator: no test task or check outlives its deployment.

- a rejection stops a test task that would never stop by itself (image tag `testhang`);
- a cancel cancels the check workflow of a `workflow` step (the shipped example check, on its
  own task queue and worker process);
- a worker killed with kill -9 while the step's test task runs: the next worker follows that
  task instead of starting a second one;
- bad step definitions are refused, by the run the temporal CLI starts and by the starter,
  before any ECS call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError, RPCStatusCode

from ecs_canary.models import DecisionInput, DeploymentStatus
from ecs_canary.unprocessed_update import execute_update
from tests.helpers import (
    ROOT,
    assert_failed_at_once,
    cli_start,
    describe,
    existing_service,
    free_port,
    inventory,
    kill_hard,
    logged_json,
    request_file,
    standalone_tasks,
    status,
    stop,
    wait_until,
    worker_process,
)

CHECK_EXAMPLE = ROOT / "examples" / "check_workflow"
STOPPED_BY_THE_STEP = "ecs-canary: verification step smoke was stopped"


def _smoke_step(**extra: Any) -> dict[str, Any]:
    """A run_task step on the canary's own task definition."""
    return {"name": "smoke", "type": "run_task", "timeout_seconds": 600, **extra}


def _with_steps(requests, *steps: dict[str, Any], image: str = "nginx:1.27", **verification):
    return requests.raw(image=image, verification={"steps": list(steps), **verification})


def _all_in(ecs, last_status: str) -> list[dict[str, Any]]:
    """The test tasks once there are some and every one is in `last_status`; else []."""
    tasks = standalone_tasks(ecs, "RUNNING", "STOPPED")
    return tasks if tasks and all(t["lastStatus"] == last_status for t in tasks) else []


def _still_wanted(ecs) -> list[str]:
    """Test tasks nobody has stopped (desired status RUNNING)."""
    return [task["taskArn"] for task in standalone_tasks(ecs, "RUNNING")]


async def _reject(handle: WorkflowHandle, by: str = "alice") -> DeploymentStatus:
    decision = DecisionInput(by=by, reason="the smoke tests hang")
    # As starter.py sends it: again if a worker that has just started did not process it.
    return await execute_update(handle, "reject", decision, DeploymentStatus)


async def _step_states(handle: WorkflowHandle) -> list[tuple[str, str]]:
    return [(s.name, s.state) for s in (await status(handle)).verification_steps]


def _assert_stopped_by_the_step(ecs) -> dict[str, Any]:
    """The one test task, stopped by the step's StopTask (not by exiting)."""
    (task,) = standalone_tasks(ecs, "RUNNING", "STOPPED")
    assert (task["desiredStatus"], task["stopCode"]) == ("STOPPED", "UserInitiated"), task
    assert task["stoppedReason"] == STOPPED_BY_THE_STEP
    return task


# --- A rejection during a run_task step -----------------------------------------------------


async def test_a_rejection_stops_a_test_task_that_never_stops_by_itself(
    worker, requests, ecs, deploy
):
    old_arn = existing_service(ecs, requests)
    # Services ignore the `testhang` tag: only the step's one-off task hangs.
    handle = await deploy(_with_steps(requests, _smoke_step(), image="nginx:testhang"))
    await wait_until(lambda: _all_in(ecs, "RUNNING"), timeout=60)
    assert await _step_states(handle) == [("smoke", "running")]

    decided = await _reject(handle)
    result = await handle.result()

    # The step stopped its task before the run closed: nothing is left running behind it.
    assert _still_wanted(ecs) == []
    await wait_until(lambda: _all_in(ecs, "STOPPED"))
    _assert_stopped_by_the_step(ecs)
    assert (decided.decision.action, decided.decision.by) == ("reject", "alice")
    assert result.outcome == "rejected" and result.canary_deleted
    assert (result.decision.via, result.decision.by) == ("update", "alice")
    assert [(s.name, s.state) for s in result.verification_steps] == [("smoke", "cancelled")]
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn


# --- A cancel during a workflow step ------------------------------------------------------------


@contextmanager
def _check_worker(address: str, task_queue: str, log_path: Path) -> Iterator[subprocess.Popen]:
    """examples/check_workflow/worker.py as a user runs it (CanarySmokeCheck and its probe
    activity on `task_queue`), stopped with SIGTERM when the block ends."""
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "CHECK_TASK_QUEUE": task_queue}
    env.pop("TEMPORAL_PROFILE", None)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=CHECK_EXAMPLE, env=env, stdout=log, stderr=log
        )
    try:
        yield process
    finally:
        stop(process)


async def _waits_on_a_timer(check: WorkflowHandle) -> bool:
    """The check made its first request and sleeps before the next (a durable timer)."""
    try:
        history = await check.fetch_history()
    except RPCError as err:  # the deployment has not started it yet
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return any(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)


async def test_a_cancel_during_a_check_workflow_cancels_the_check(
    client, worker, requests, ecs, deploy, tmp_path
):
    old_arn = existing_service(ecs, requests)
    check_queue = f"qa-checks-{uuid.uuid4().hex[:8]}"
    # One request to a port nobody listens on, then an hour's sleep before the second.
    probe = {"url": f"http://127.0.0.1:{free_port()}/", "timeout_seconds": 1}
    step = {
        "name": "e2e",
        "type": "workflow",
        "workflow_type": "CanarySmokeCheck",
        "task_queue": check_queue,
        "input": {**probe, "requests": 2, "interval_seconds": 3600},
    }
    address = client.service_client.config.target_host
    with _check_worker(address, check_queue, tmp_path / "checks.log"):
        handle = await deploy(_with_steps(requests, step))
        check = client.get_workflow_handle(f"{handle.id}/verify/e2e")
        await wait_until(lambda: _waits_on_a_timer(check), timeout=60)
        assert await _step_states(handle) == [("e2e", "running")]

        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as caught:
            await handle.result()
        # Asked while the check's worker still runs, and with no wait: the deployment closed
        # only after its check did.
        check_status = (await check.describe()).status

    assert isinstance(caught.value.cause, CancelledError), caught.value.cause
    assert check_status == WorkflowExecutionStatus.CANCELED
    # A cancelled run closes without a result: the status query tells how it ended.
    final = await status(handle)
    assert final.outcome == "cancelled"
    assert [(s.name, s.state) for s in final.verification_steps] == [("e2e", "cancelled")]
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn


# --- A worker killed during a run_task step ----------------------------------------------------


# How the step's one test task ends once its worker is dead: on its own (exit code 0 after the
# emulator's task run time, before the activity's heartbeat timeout lets a retry start), or,
# with `testhang`, when someone rejects the canary while the next worker follows it.
KILLED_MID_STEP = {
    "the task exits 0 while no worker runs": ("nginx:1.27", "succeeded"),
    "the task hangs until a rejection": ("nginx:testhang", "rejected"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(KILLED_MID_STEP))
async def test_a_worker_killed_during_a_run_task_step_starts_one_test_task(
    case, client, task_queue, requests, ecs, deploy, tmp_path
):
    image, outcome = KILLED_MID_STEP[case]
    existing_service(ecs, requests)
    request = _with_steps(requests, _smoke_step(), image=image, require_approval=False)
    address = client.service_client.config.target_host
    first_log, second_log = tmp_path / "first-worker.log", tmp_path / "second-worker.log"
    with worker_process(address, task_queue, first_log) as first:
        handle = await deploy(request)
        await wait_until(lambda: _all_in(ecs, "RUNNING"), timeout=60)
        kill_hard(first)
    with worker_process(address, task_queue, second_log):
        # The retry (once the dead worker's heartbeats are overdue) finds the task by its
        # startedBy token instead of running another.
        following = "Following task smoke (1 task)"
        (followed,) = await wait_until(lambda: logged_json(second_log, following), timeout=60)
        if outcome == "rejected":
            await _reject(handle)
        result = await handle.result()

    assert result.outcome == outcome
    assert followed["attempt"] == 2
    started = logged_json(first_log, "Running task smoke (1 task)")
    assert [line["attempt"] for line in started] == [1]
    assert logged_json(second_log, "Running task smoke") == []
    (task,) = standalone_tasks(ecs, "RUNNING", "STOPPED")
    assert task["startedBy"].endswith(":smoke")
    if outcome == "rejected":
        assert _still_wanted(ecs) == []
        assert result.verification_steps[0].state == "cancelled"
        await wait_until(lambda: _all_in(ecs, "STOPPED"))
        _assert_stopped_by_the_step(ecs)
    else:
        assert (task["lastStatus"], task["containers"][0]["exitCode"]) == ("STOPPED", 0)
        assert result.verification_steps[0].state == "passed"
        assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"


# --- Bad step definitions ---------------------------------------------------------------------

# The steps, what the run the temporal CLI started fails with (pydantic's words, in the
# workflow's InvalidRequest) and the starter's one line.
BAD_STEPS = {
    "unknown type": (
        [{"name": "smoke", "type": "selenium"}],
        ["verification.steps.0", "'selenium'"],
        "verification.steps[0] (smoke, selenium): unknown step type 'selenium': expected one "
        "of run_task, http, metrics, workflow",
    ),
    "duplicate names": (
        [_smoke_step(), {"name": "smoke", "type": "http", "url": "http://127.0.0.1:9/"}],
        ["verification step names must be unique: smoke"],
        "verification: verification step names must be unique: smoke",
    ),
    "http step without url": (
        [{"name": "health", "type": "http"}],
        ["verification.steps.0.http.url", "Field required"],
        "verification.steps[0] (health, http).url: Field required",
    ),
    "metrics step without metric_name": (
        [{"name": "errors", "type": "metrics", "namespace": "MyApp", "max_value": 5}],
        ["verification.steps.0.metrics.metric_name", "Field required"],
        "verification.steps[0] (errors, metrics).metric_name: Field required",
    ),
    "workflow step without task_queue": (
        [{"name": "e2e", "type": "workflow", "workflow_type": "CanarySmokeCheck"}],
        ["verification.steps.0.workflow.task_queue", "Field required"],
        "verification.steps[0] (e2e, workflow).task_queue: Field required",
    ),
}


async def _failed_run_of_the_cli(client, task_queue, runs, request_path: str) -> str:
    """`temporal workflow start --input-file`: the run must fail in its first workflow task
    with InvalidRequest; its message."""
    workflow_id = f"bad-steps-{task_queue}"
    started = await cli_start(client, task_queue, workflow_id, "--input-file", request_path)
    assert started.code == 0, started.err
    message = await assert_failed_at_once(await runs.track(workflow_id), "InvalidRequest")
    assert message.startswith("Invalid deployment request")
    return message


async def _refusal_of_the_starter(client, task_queue, starter, request_path: str) -> str:
    """`starter.py deploy`: exit 2 with one line on stderr, and no run started."""
    done = await starter.run("deploy", request_path)
    assert done.code == 2, done
    (line,) = done.err.strip().splitlines()
    started = [w async for w in client.list_workflows(f"TaskQueue = '{task_queue}'")]
    assert started == []
    return line.removeprefix("invalid request: ")


@pytest.mark.parametrize("via", ["temporal CLI", "starter"])
@pytest.mark.parametrize("case", list(BAD_STEPS))
async def test_bad_steps_are_refused_before_any_ecs_call(
    via, case, client, worker, task_queue, requests, ecs, emulator, runs, starter, tmp_path
):
    steps, run_fails_with, starter_says = BAD_STEPS[case]
    before = inventory(ecs)
    emulator.admin.reset_calls()
    request_path = request_file(tmp_path, requests.raw(verification={"steps": steps}))
    if via == "temporal CLI":
        message = await _failed_run_of_the_cli(client, task_queue, runs, request_path)
        assert all(words in message for words in run_fails_with), message
    else:
        assert await _refusal_of_the_starter(client, task_queue, starter, request_path) == (
            starter_says
        )

    assert emulator.admin.calls()["total"] == 0
    assert inventory(ecs) == before
