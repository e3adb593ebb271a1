"""The verification step activities (run_task, http, metrics) in Temporal's ActivityEnvironment,
against the in-process ECS emulator over HTTP (and a local HTTP server for the http step).

Cancelling a sync activity raises CancelledError in its thread, so those that are cancelled
run in a thread of their own while the test waits on ECS.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment

from activities.aws import AwsClients
from activities.steps.metrics import aggregate
from activities.steps.run_task import STEP_TAG
from activities.verification_steps import VerificationActivities
from ecs_canary.names import WORKFLOW_ID_TAG, workflow_id_for
from ecs_canary.steps import (
    HttpStep,
    HttpStepInput,
    MetricsStep,
    MetricsStepInput,
    RunTaskStep,
    RunTaskStepInput,
    StepVerdict,
)
from tests.helpers import CLUSTER, LogCapture, wait_until_sync
from tests.helpers.local_http import QuietHandler, serving

STARTED_BY = "ecs-canary/verify/myapp/smoke"
STOP_REASON = "ecs-canary: verification step {} was stopped"


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def steps(ecs_state: dict[str, Any]) -> VerificationActivities:
    return VerificationActivities(AwsClients(ecs_calls_per_second=200))


@pytest.fixture
def beats() -> list[Any]:
    return []


@pytest.fixture
def env(beats: list[Any]) -> ActivityEnvironment:
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, heartbeat_timeout=timedelta(seconds=30)
    )
    environment.on_heartbeat = lambda *details: beats.append(details)
    return environment


@pytest.fixture
def background() -> Iterator[Callable[..., Future[Any]]]:
    """Run an activity in a thread of its own: `background(env, fn, arg)` -> Future."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield lambda env, fn, arg: pool.submit(env.run, fn, arg)


# --- run_task -------------------------------------------------------------------------------


def task_definition_request(family: str, *containers: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": name, "image": image, "essential": essential}
            for name, image, essential in containers
        ],
    }


def register(ecs: Any, family: str, *containers: tuple[str, str, bool]) -> str:
    registered = ecs.register_task_definition(**task_definition_request(family, *containers))
    return str(registered["taskDefinition"]["taskDefinitionArn"])


def service_definition(seed: dict[str, Any]) -> dict[str, Any]:
    return {
        "desiredCount": 3,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": seed["subnets"],
                "securityGroups": [seed["security_group"]],
                "assignPublicIp": "DISABLED",
            }
        },
    }


def run_task_input(
    seed: dict[str, Any], canary_arn: str, started_by: str = STARTED_BY, **step: Any
) -> RunTaskStepInput:
    step.setdefault("name", "smoke")
    return RunTaskStepInput(
        region=None,
        cluster=CLUSTER,
        step=RunTaskStep(type="run_task", **step),
        canary_task_definition_arn=canary_arn,
        service_definition=service_definition(seed),
        started_by=started_by,
        tags={WORKFLOW_ID_TAG: workflow_id_for(CLUSTER, "myapp")},
        poll_interval_seconds=0.1,
    )


def step_tasks(ecs: Any, started_by: str = STARTED_BY) -> list[dict[str, Any]]:
    arns = [
        arn
        for status in ("RUNNING", "STOPPED")
        for arn in ecs.list_tasks(cluster=CLUSTER, startedBy=started_by, desiredStatus=status)[
            "taskArns"
        ]
    ]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def task_id(task: dict[str, Any]) -> str:
    return str(task["taskArn"].rsplit("/", 1)[-1])


def ecs_calls(emulator: Any, operation: str) -> int:
    return int(emulator.admin.calls()["by_operation"].get(operation, 0))


def test_run_task_registers_its_task_definition_once(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    ecs: Any,
    ecs_state: dict[str, Any],
    emulator: Any,
) -> None:
    definition = task_definition_request("smoke-tests", ("tests", "runner:1.0", True))
    verdict = env.run(
        steps.run_task_step, run_task_input(ecs_state, "unused", task_definition=definition)
    )
    assert verdict.passed
    (task,) = step_tasks(ecs)
    described = ecs.describe_task_definition(
        taskDefinition=task["taskDefinitionArn"], include=["TAGS"]
    )
    assert {t["key"]: t["value"] for t in described["tags"]} == {
        WORKFLOW_ID_TAG: workflow_id_for(CLUSTER, "myapp"),
        STEP_TAG: STARTED_BY,
    }
    assert ecs_calls(emulator, "RegisterTaskDefinition") == 1

    # Another step's attempt died after registering, before RunTask: its retry finds it.
    again = f"{STARTED_BY}-2"
    ecs.register_task_definition(**definition, tags=[{"key": STEP_TAG, "value": again}])
    verdict = env.run(
        steps.run_task_step,
        run_task_input(ecs_state, "unused", started_by=again, task_definition=definition),
    )
    assert verdict.passed
    assert ecs_calls(emulator, "RegisterTaskDefinition") == 2  # the test's, not a third
    (task,) = step_tasks(ecs, again)
    assert task["taskDefinitionArn"].endswith("smoke-tests:2")


def test_run_task_passes_when_every_task_exits_zero(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    ecs: Any,
    ecs_state: dict[str, Any],
    logs: LogCapture,
    beats: list[Any],
) -> None:
    canary = register(ecs, "myapp-task", ("web", "nginx:1.27", True))
    overrides = {"containerOverrides": [{"name": "web", "command": ["pytest", "-k", "smoke"]}]}
    request = run_task_input(ecs_state, canary, count=2, overrides=overrides)

    verdict = env.run(steps.run_task_step, request)

    assert verdict == StepVerdict(passed=True, summary="2 tasks passed (exit code 0)")
    tasks = step_tasks(ecs)
    assert len(tasks) == 2
    for task in tasks:  # the service's network, launch type and platform; the step's overrides
        assert task["taskDefinitionArn"] == canary
        assert task["launchType"] == "FARGATE"
        assert task["platformVersion"] == "LATEST"
        assert task["attachments"][0]["type"] == "ElasticNetworkInterface"
        assert task["overrides"] == overrides
    lines = logs.lines()
    assert f"Running task smoke (2 tasks) with task definition {canary}" in lines
    for task in tasks:
        assert f"Task {task_id(task)} stopped: exit code 0" in lines
    assert beats and all(details[0]["started_at"] for details in beats)


@pytest.mark.parametrize(
    ("containers", "failing"),
    [
        ([("tests", "runner:testfail-smoke", True)], "tests"),
        # A non-essential container's exit code does not count.
        ([("tests", "runner:1.0", True), ("sidecar", "agent:testfail", False)], None),
    ],
    ids=["essential-fails", "non-essential-fails"],
)
def test_run_task_judges_essential_containers(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    ecs: Any,
    ecs_state: dict[str, Any],
    logs: LogCapture,
    containers: list[tuple[str, str, bool]],
    failing: str | None,
) -> None:
    register(ecs, "smoke-tests", *containers)
    request = run_task_input(ecs_state, "unused", task_definition="smoke-tests:1")

    verdict = env.run(steps.run_task_step, request)

    (task,) = step_tasks(ecs)
    if failing is None:
        assert verdict == StepVerdict(passed=True, summary="1 task passed (exit code 0)")
        assert f"Task {task_id(task)} stopped: exit code 0" in logs.lines()
    else:
        assert verdict == StepVerdict(
            passed=False,
            summary=f"task {task_id(task)}: container {failing} exited with code 1 "
            "(Essential container in task exited)",
        )
        assert f"Task {task_id(task)} stopped: exit code 1" in logs.lines()


def test_run_task_retry_follows_the_tasks_it_finds(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    ecs: Any,
    ecs_state: dict[str, Any],
    emulator: Any,
    logs: LogCapture,
) -> None:
    """A first attempt started the task and its worker died: the retry starts none."""
    canary = register(ecs, "myapp-task", ("web", "nginx:1.27", True))
    network = service_definition(ecs_state)["networkConfiguration"]
    ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=canary,
        launchType="FARGATE",
        startedBy=STARTED_BY,
        networkConfiguration=network,
    )
    env.info = dataclasses.replace(env.info, attempt=2)

    verdict = env.run(steps.run_task_step, run_task_input(ecs_state, canary))

    assert verdict.passed
    assert ecs_calls(emulator, "RunTask") == 1  # the first attempt's
    assert f"Following task smoke (1 task) with task definition {canary}" in logs.lines()


def wait_running(ecs: Any) -> dict[str, Any]:
    tasks = wait_until_sync(
        lambda: [t for t in step_tasks(ecs) if t["lastStatus"] == "RUNNING"], timeout=15
    )
    return dict(tasks[0])


def wait_stopped(ecs: Any) -> dict[str, Any]:
    (task,) = wait_until_sync(
        lambda: [t for t in step_tasks(ecs) if t["lastStatus"] == "STOPPED"], timeout=15
    )
    return dict(task)


def test_run_task_cancelled_stops_its_task(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    ecs: Any,
    ecs_state: dict[str, Any],
    background: Callable[..., Future[Any]],
) -> None:
    register(ecs, "hang-tests", ("tests", "runner:testhang", True))
    request = run_task_input(ecs_state, "unused", name="hang", task_definition="hang-tests")
    running = background(env, steps.run_task_step, request)
    wait_running(ecs)

    env.cancel()

    with pytest.raises(CancelledError):
        running.result(timeout=15)
    task = wait_stopped(ecs)
    assert (task["stopCode"], task["stoppedReason"]) == (
        "UserInitiated",
        STOP_REASON.format("hang"),
    )


def test_run_task_times_out_and_stops_its_task(
    steps: VerificationActivities, env: ActivityEnvironment, ecs: Any, ecs_state: dict[str, Any]
) -> None:
    register(ecs, "hang-tests", ("tests", "runner:testhang", True))
    request = run_task_input(
        ecs_state, "unused", name="hang", task_definition="hang-tests", timeout_seconds=1.5
    )
    started = time.monotonic()

    verdict = env.run(steps.run_task_step, request)

    assert verdict == StepVerdict(passed=False, summary="timed out after 1.5s")
    assert time.monotonic() - started < 5
    task = wait_stopped(ecs)
    assert task["stoppedReason"] == STOP_REASON.format("hang")


# --- http -----------------------------------------------------------------------------------


class _Handler(QuietHandler):
    """/ok (200 "ok healthy"), /status/<code>, /slow?ms=N (200 after N ms); records each hit
    in `hits` (a list each server's subclass brings)."""

    hits: list[dict[str, Any]]

    def _answer(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self.hits.append(
            {
                "method": self.command,
                "path": url.path,
                "header": self.headers.get("X-Check"),
                "body": self.rfile.read(length).decode() if length else None,
            }
        )
        status, body = 200, b"ok healthy"
        if url.path.startswith("/status/"):
            status, body = int(url.path.rsplit("/", 1)[-1]), b"unavailable"
        elif url.path == "/slow":
            time.sleep(int(parse_qs(url.query)["ms"][0]) / 1000)
        try:
            self.answer(status, body)
        except OSError:  # the client gave up waiting (the timeout case)
            self.close_connection = True

    do_GET = do_POST = _answer


@pytest.fixture
def http_server() -> Iterator[Any]:
    handler = type("Handler", (_Handler,), {"hits": []})
    with serving(handler) as base:
        yield SimpleNamespace(base=base, hits=handler.hits)


def http_input(url: str, **step: Any) -> HttpStepInput:
    step.setdefault("interval_seconds", 0.01)
    return HttpStepInput(step=HttpStep(type="http", name="smoke-http", url=url, **step))


LATENCIES = r"p50 (<1|\d+) ms, p95 (<1|\d+) ms"


def test_http_passes_with_latency_percentiles(
    steps: VerificationActivities, env: ActivityEnvironment, http_server: Any
) -> None:
    request = http_input(
        f"{http_server.base}/ok",
        method="POST",
        headers={"X-Check": "canary"},
        body='{"ping": true}',
        expect_body_contains="healthy",
        max_latency_ms=2000,
    )

    verdict = env.run(steps.http_step, request)

    assert verdict.passed
    assert verdict.summary is not None
    assert re.fullmatch(rf"10 requests: 10 ok, 0 failed; {LATENCIES}", verdict.summary)
    assert len(http_server.hits) == 10
    assert http_server.hits[0] == {
        "method": "POST",
        "path": "/ok",
        "header": "canary",
        "body": '{"ping": true}',
    }


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("path", "step", "reason"),
    [
        ("/status/503", {}, r"request 1: status 503 not in \[200\]"),
        ("/ok", {"expect_body_contains": "ready"}, "request 1: body does not contain 'ready'"),
        ("/slow?ms=300", {"max_latency_ms": 100}, r"request 1: latency \d+ ms over 100 ms"),
        (
            "/slow?ms=3000",
            {"max_latency_ms": 100},
            r"request 1: no answer within 1s \(ReadTimeout\)",
        ),
        (None, {}, "request 1: ConnectError: .*"),
    ],
    ids=["status", "body", "latency", "timeout", "connection-refused"],
)
def test_http_fails_on_a_bad_answer(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    http_server: Any,
    path: str | None,
    step: dict[str, Any],
    reason: str,
) -> None:
    url = f"{http_server.base}{path}" if path else f"http://127.0.0.1:{closed_port()}/"
    verdict = env.run(steps.http_step, http_input(url, requests=3, **step))

    assert not verdict.passed
    assert verdict.summary is not None
    assert re.fullmatch(
        rf"1 of 3 requests: 0 ok, 1 failed(; {LATENCIES})?; {reason}", verdict.summary
    )


def test_http_stops_once_failures_exceed_max_failures(
    steps: VerificationActivities, env: ActivityEnvironment, http_server: Any
) -> None:
    request = http_input(f"{http_server.base}/status/503", requests=10, max_failures=2)
    verdict = env.run(steps.http_step, request)
    assert not verdict.passed
    assert verdict.summary is not None
    assert verdict.summary.startswith("3 of 10 requests: 0 ok, 3 failed; p50 ")
    assert verdict.summary.endswith("; request 1: status 503 not in [200]")
    assert len(http_server.hits) == 3


def test_http_tolerates_up_to_max_failures(
    steps: VerificationActivities, env: ActivityEnvironment, http_server: Any
) -> None:
    request = http_input(f"{http_server.base}/status/503", requests=2, max_failures=2)
    verdict = env.run(steps.http_step, request)
    assert verdict.passed
    assert verdict.summary is not None
    assert verdict.summary.startswith("2 requests: 0 ok, 2 failed")


def test_http_cancelled_stops_sending(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    http_server: Any,
    background: Callable[..., Future[Any]],
) -> None:
    request = http_input(f"{http_server.base}/ok", requests=1000, interval_seconds=0.05)
    running = background(env, steps.http_step, request)
    wait_until_sync(lambda: len(http_server.hits) >= 2)

    env.cancel()

    with pytest.raises(CancelledError):
        running.result(timeout=5)
    sent = len(http_server.hits)
    assert sent < 1000


def test_http_times_out(
    steps: VerificationActivities, env: ActivityEnvironment, http_server: Any
) -> None:
    request = http_input(
        f"{http_server.base}/ok", requests=1000, interval_seconds=0.2, timeout_seconds=0.5
    )
    verdict = env.run(steps.http_step, request)
    assert not verdict.passed
    assert verdict.summary is not None
    assert verdict.summary.startswith("timed out after 0.5s: ")
    assert " of 1000 requests: " in verdict.summary


# --- metrics --------------------------------------------------------------------------------

NAMESPACE = "AWS/ApplicationELB"
METRIC = "HTTPCode_Target_5XX_Count"


def put(cloudwatch: Any, service: str, *values: float) -> None:
    # A few seconds back: moto cuts GetMetricData's EndTime to whole seconds.
    when = datetime.now(UTC) - timedelta(seconds=5)
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE,
        MetricData=[
            {
                "MetricName": METRIC,
                "Dimensions": [{"Name": "TargetGroup", "Value": f"targetgroup/{service}/0a1b"}],
                "Timestamp": when,
                "Value": value,
                "Unit": "Count",
            }
            for value in values
        ],
    )


def metrics_input(**step: Any) -> MetricsStepInput:
    return MetricsStepInput(
        region=None,
        step=MetricsStep(
            type="metrics",
            name="errors",
            namespace=NAMESPACE,
            metric_name=METRIC,
            dimensions={"TargetGroup": "targetgroup/{service}/0a1b"},
            **step,
        ),
        canary_service="myappCanary",
        main_service="myapp",
        poll_interval_seconds=0.1,
    )


WHAT = f"{METRIC} Sum over 300s"


@pytest.mark.parametrize(
    ("canary", "primary", "limits", "passed", "summary"),
    [
        ([1, 1], [], {"max_value": 5}, True, "canary 2 (limit 5)"),
        ([4, 3], [], {"max_value": 5}, False, "canary 7 (limit 5); canary above the limit"),
        (
            [3],
            [2],
            {"max_value": 5, "max_ratio_to_primary": 1.5},
            True,
            "canary 3, primary 2 (limit 5, ratio ≤ 1.5)",
        ),
        (
            [4],
            [2],
            {"max_ratio_to_primary": 1.5},
            False,
            "canary 4, primary 2 (ratio ≤ 1.5); canary above 1.5 × primary",
        ),
        (
            [1],
            [],
            {"max_ratio_to_primary": 2},
            False,
            "canary 1, primary 0 (no data) (ratio ≤ 2); canary above 2 × primary",
        ),
    ],
    ids=["under-limit", "over-limit", "within-ratio", "over-ratio", "primary-without-data"],
)
def test_metrics_compares_with_limit_and_primary(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    cloudwatch: Any,
    canary: list[float],
    primary: list[float],
    limits: dict[str, float],
    passed: bool,
    summary: str,
) -> None:
    put(cloudwatch, "myappCanary", *canary)
    if primary:
        put(cloudwatch, "myapp", *primary)
    put(cloudwatch, "other", 100)  # another service's errors count for neither

    verdict = env.run(steps.metrics_step, metrics_input(**limits))

    assert verdict == StepVerdict(passed=passed, summary=f"{WHAT}: {summary}")


NO_DATA = f"no data for {WHAT} (TargetGroup=targetgroup/myappCanary/0a1b)"


@pytest.mark.parametrize(
    ("on_no_data", "verdict"),
    [
        ("fail", StepVerdict(passed=False, summary=NO_DATA)),
        ("pass", StepVerdict(passed=True, summary=f"{NO_DATA} (on_no_data: pass)")),
        ("wait", StepVerdict(passed=False, summary=f"timed out after 0.5s: {NO_DATA}")),
    ],
)
def test_metrics_without_data(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    cloudwatch: Any,
    on_no_data: str,
    verdict: StepVerdict,
) -> None:
    put(cloudwatch, "myapp", 3)  # the primary's data is not the canary's
    request = metrics_input(max_value=5, on_no_data=on_no_data, timeout_seconds=0.5)
    assert env.run(steps.metrics_step, request) == verdict


def test_metrics_waits_for_data(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    cloudwatch: Any,
    logs: LogCapture,
    background: Callable[..., Future[Any]],
) -> None:
    request = metrics_input(max_value=5, on_no_data="wait", timeout_seconds=20)
    waiting = background(env, steps.metrics_step, request)
    wait_until_sync(lambda: f"Waiting for data: {NO_DATA}" in logs.lines())
    assert not waiting.done()

    put(cloudwatch, "myappCanary", 2)

    assert waiting.result(timeout=10) == StepVerdict(
        passed=True, summary=f"{WHAT}: canary 2 (limit 5)"
    )


def test_metrics_wait_is_cancelled_at_once(
    steps: VerificationActivities,
    env: ActivityEnvironment,
    cloudwatch: Any,
    beats: list[Any],
    background: Callable[..., Future[Any]],
) -> None:
    request = metrics_input(max_value=5, on_no_data="wait", timeout_seconds=60)
    waiting = background(env, steps.metrics_step, request)
    wait_until_sync(lambda: beats)
    env.cancel()
    with pytest.raises(CancelledError):
        waiting.result(timeout=5)


@pytest.mark.parametrize(
    ("stat", "expected"),
    [("Sum", 9), ("SampleCount", 9), ("Average", 3), ("Minimum", 1), ("Maximum", 5), ("p99", 5)],
)
def test_window_value_by_stat(stat: str, expected: float) -> None:
    assert aggregate(stat, [1, 3, 5]) == expected


def test_a_retry_keeps_the_first_attempts_deadline(
    steps: VerificationActivities, env: ActivityEnvironment, http_server: Any
) -> None:
    """The step's time counts from its first attempt (in the heartbeat details), not a retry's."""
    env.info = dataclasses.replace(
        env.info, attempt=2, heartbeat_details=[{"started_at": time.time() - 100}]
    )
    request = http_input(f"{http_server.base}/ok", timeout_seconds=60)
    verdict = env.run(steps.http_step, request)
    assert verdict == StepVerdict(
        passed=False, summary="timed out after 60s: 0 of 10 requests: 0 ok, 0 failed"
    )
    assert http_server.hits == []
