"""Verification steps through the real workflow and worker: the ECS emulator over HTTP (RunTask
test tasks), a local HTTP server, moto's CloudWatch, and the example check workflow
(`examples/check_workflow`) on a worker and task queue of its own, as a user runs it.

A step that passes lets the canary through; one that fails rejects it (the canary deleted, the
main service untouched) or, with `on_step_failure: gate`, leaves the choice to a person.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from ecs_canary.models import DeploymentResult
from tests.helpers import (
    HttpTarget,
    check_worker,
    describe,
    existing_service,
    http_target,
    put_metric,
    standalone_tasks,
    status,
    wait_for_stage,
)

NAMESPACE, METRIC = "MyApp", "Http5xx"
WHAT = f"{METRIC} Sum over 300s"
LATENCIES = r"p50 (<1|\d+) ms, p95 (<1|\d+) ms"
SMOKE = {
    "name": "smoke",
    "type": "run_task",
    "task_definition": None,
    "overrides": {"containerOverrides": [{"name": "web", "command": ["./smoke.sh"]}]},
    "timeout_seconds": 30,
}
# A test runner of its own whose essential container exits 1 (the emulator's `testfail` tag).
FAILING_SUITE = {
    "name": "suite",
    "type": "run_task",
    "task_definition": {
        "family": "myapp-tests",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": "tests", "image": "myapp-tests:testfail", "essential": True}
        ],
    },
    "timeout_seconds": 30,
}
SUITE_FAILED = (
    r"task [0-9a-f-]+: container tests exited with code 1 "
    r"\(Essential container in task exited\)"
)


@pytest.fixture
def target() -> Iterator[HttpTarget]:
    with http_target() as serving:
        yield serving


@pytest.fixture
async def check_queue(client: Client) -> AsyncIterator[str]:
    async with check_worker(client) as task_queue:
        yield task_queue


@dataclass(frozen=True)
class Setting:
    """What a step may point at: the local server, CloudWatch, the check worker's queue."""

    target: HttpTarget
    cloudwatch: Any
    check_queue: str


def http_step(target: HttpTarget, path: str, name: str = "health", **extra: Any) -> dict:
    return {
        "name": name,
        "type": "http",
        "url": target.url(path),
        "requests": 3,
        "interval_seconds": 0,
        "timeout_seconds": 10,
        **extra,
    }


def metrics_step(name: str, **limits: float) -> dict:
    return {
        "name": name,
        "type": "metrics",
        "namespace": NAMESPACE,
        "metric_name": METRIC,
        "dimensions": {"ServiceName": "{service}"},
        "timeout_seconds": 10,
        **limits,
    }


def check_step(setting: Setting, path: str | None) -> dict:
    """The example check workflow, on its own worker's queue, requesting `path` twice (with no
    path, an input the check refuses)."""
    probe: dict[str, Any] = {"requests": 2, "interval_seconds": 0}
    if path is not None:
        probe["url"] = setting.target.url(path)
    return {
        "name": "e2e",
        "type": "workflow",
        "workflow_type": "CanarySmokeCheck",
        "task_queue": setting.check_queue,
        "input": {**probe, "timeout_seconds": 5},
        "timeout_seconds": 30,
    }


def put_errors(cloudwatch: Any, canary: list[float], primary: list[float]) -> None:
    """The canary's and the main service's 5xx counts in the last minutes."""
    put_metric(cloudwatch, NAMESPACE, METRIC, "myappCanary", *canary)
    if primary:
        put_metric(cloudwatch, NAMESPACE, METRIC, "myapp", *primary)


async def step_activity_summaries(handle: WorkflowHandle) -> list[str]:
    """The Web UI summaries of the run's step activities and child workflows, in order."""
    kinds = {
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    }
    history = await handle.fetch_history()
    shown = [
        json.loads(event.user_metadata.summary.data)
        for event in history.events
        if event.event_type in kinds and event.user_metadata.HasField("summary")
    ]
    return [text for text in shown if text.startswith("Verify ")]


async def test_every_kind_of_step_passes_and_the_canary_is_promoted(
    worker, requests, ecs, cloudwatch, deploy, client, target, check_queue
):
    old_arn = existing_service(ecs, requests)
    setting = Setting(target, cloudwatch, check_queue)
    put_errors(cloudwatch, canary=[1, 1], primary=[2])
    steps = [
        SMOKE,
        http_step(target, "/health", expect_body_contains="healthy"),
        metrics_step("errors", max_value=5),
        metrics_step("errors-vs-primary", max_ratio_to_primary=1.5),
        check_step(setting, "/ready"),
    ]
    handle = await deploy(requests.raw(verification={"require_approval": False, "steps": steps}))
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert result.decision is not None
    assert (result.decision.via, result.decision.reason) == (
        "bake",
        "the bake time passed and every verification step passed, with no alarm",
    )
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn != old_arn
    shown = [(s.name, s.type, s.state) for s in result.verification_steps]
    assert shown == [
        ("smoke", "run_task", "passed"),
        ("health", "http", "passed"),
        ("errors", "metrics", "passed"),
        ("errors-vs-primary", "metrics", "passed"),
        ("e2e", "workflow", "passed"),
    ]
    summaries = [s.summary or "" for s in result.verification_steps]
    assert summaries[0] == "1 task passed (exit code 0)"
    assert re.fullmatch(rf"3 requests: 3 ok, 0 failed; {LATENCIES}", summaries[1])
    assert summaries[2:4] == [
        f"{WHAT}: canary 2 (limit 5)",
        f"{WHAT}: canary 2, primary 2 (ratio ≤ 1.5)",
    ]
    assert re.fullmatch(rf"{re.escape(target.url('/ready'))}: 2/2 ok, slowest \d+ ms", summaries[4])
    for earlier, later in pairwise(result.verification_steps):  # one after another
        assert earlier.started_at and earlier.ended_at and later.started_at
        assert earlier.started_at <= earlier.ended_at <= later.started_at
    assert (await status(handle)).verification_steps == result.verification_steps
    assert await step_activity_summaries(handle) == [
        f"Verify {step['name']} ({step['type']})" for step in steps
    ]

    # Each step checked what it names: the canary's own task definition with the step's
    # overrides, the server, and the check on its own worker's queue.
    (test_task,) = standalone_tasks(ecs, "STOPPED")
    assert test_task["taskDefinitionArn"] == result.task_definition_arn
    assert test_task["startedBy"] == f"{handle.result_run_id}:smoke"
    assert test_task["overrides"]["containerOverrides"][0]["command"] == ["./smoke.sh"]
    assert target.paths == ["/health"] * 3 + ["/ready"] * 2
    child = await client.get_workflow_handle(f"{handle.id}/verify/e2e").describe()
    assert (child.status, child.task_queue) == (WorkflowExecutionStatus.COMPLETED, check_queue)


@dataclass(frozen=True)
class Failing:
    """A step that fails (`arrange` puts what it checks in place and returns it), and the
    summary it fails with (a regular expression)."""

    arrange: Callable[[Setting], dict]
    summary: str


def _metrics_over(
    canary: list[float], primary: list[float], **limits: float
) -> Callable[[Setting], dict]:
    def arrange(setting: Setting) -> dict:
        put_errors(setting.cloudwatch, canary, primary)
        return metrics_step("errors", **limits)

    return arrange


FAILING = {
    "run_task": Failing(lambda _: FAILING_SUITE, SUITE_FAILED),
    "http-status": Failing(
        lambda s: http_step(s.target, "/status/500"),
        rf"1 of 3 requests: 0 ok, 1 failed; {LATENCIES}; request 1: status 500 not in \[200\]",
    ),
    "http-body": Failing(
        lambda s: http_step(s.target, "/health", expect_body_contains="ready"),
        rf"1 of 3 requests: 0 ok, 1 failed; {LATENCIES}; "
        "request 1: body does not contain 'ready'",
    ),
    "metrics-limit": Failing(
        _metrics_over([4, 3], [], max_value=5),
        re.escape(f"{WHAT}: canary 7 (limit 5); canary above the limit"),
    ),
    "metrics-ratio": Failing(
        _metrics_over([4], [2], max_value=5, max_ratio_to_primary=1.5),
        re.escape(
            f"{WHAT}: canary 4, primary 2 (limit 5, ratio ≤ 1.5); canary above 1.5 × primary"
        ),
    ),
    "workflow": Failing(
        lambda s: check_step(s, "/status/500"),
        r"http://127\.0\.0\.1:\d+/status/500: 0/2 ok, slowest \d+ ms; "
        r"first failure: request 1: status 500 not in \[200\]",
    ),
    "workflow-bad-input": Failing(
        lambda s: check_step(s, None), re.escape('invalid input: "input" needs a "url" (a string)')
    ),
}


@pytest.mark.parametrize("case", FAILING.values(), ids=FAILING.keys())
async def test_a_failing_step_rejects_the_canary_and_leaves_the_main_service(
    worker, requests, ecs, cloudwatch, deploy, target, check_queue, case
):
    old_arn = existing_service(ecs, requests)
    failing = case.arrange(Setting(target, cloudwatch, check_queue))
    name = failing["name"]
    steps = [failing, http_step(target, "/after", name="after")]
    handle = await deploy(requests.raw(verification={"require_approval": False, "steps": steps}))
    result: DeploymentResult = await handle.result()

    assert result.outcome == "rejected" and result.canary_deleted
    decision = result.decision
    assert decision is not None and decision.reason is not None
    assert (decision.action, decision.via, decision.by) == ("reject", "step", f"step:{name}")
    assert re.fullmatch(rf"verification step {name} failed: {case.summary}", decision.reason)
    assert result.reason == f"reject (step) by step:{name}: {decision.reason}"
    (failed, after) = result.verification_steps
    assert (failed.name, failed.state) == (name, "failed")
    assert decision.reason.endswith(failed.summary or "no summary")
    assert (after.state, after.summary) == ("cancelled", "not run: the canary was decided first")
    assert "/after" not in target.paths
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"], len(main["deployments"])) == (
        old_arn,
        2,
        1,
    )
    assert standalone_tasks(ecs) == []  # no test task outlives its deployment


async def test_on_step_failure_gate_shows_the_failed_step_and_a_person_approves(
    worker, requests, ecs, deploy, target
):
    old_arn = existing_service(ecs, requests)
    steps = [FAILING_SUITE, http_step(target, "/health")]
    verification = {"require_approval": False, "on_step_failure": "gate", "steps": steps}
    handle = await deploy(requests.raw(verification=verification))

    opened = await wait_for_stage(handle, "verification", gate_open=True)
    # The gate opens although no approval was required; the later step still ran.
    assert opened.decision is None
    assert [(s.name, s.state) for s in opened.verification_steps] == [
        ("suite", "failed"),
        ("health", "passed"),
    ]
    assert re.fullmatch(SUITE_FAILED, opened.verification_steps[0].summary or "")
    assert target.paths == ["/health"] * 3
    assert describe(ecs, "myapp")["taskDefinition"] == old_arn
    await handle.signal("approve", {"by": "alice", "reason": "the suite is known to flake"})
    result = await handle.result()

    assert result.outcome == "succeeded"
    assert result.decision is not None
    assert (result.decision.by, result.decision.via) == ("alice", "signal")
    assert result.verification_steps == opened.verification_steps  # the failure stays visible
    assert describe(ecs, "myapp")["taskDefinition"] == result.task_definition_arn != old_arn
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
