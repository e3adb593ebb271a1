"""The worker's settings from its environment: defaults, the sandbox switch, the shared ECS
budget, the build it runs as (Worker Versioning), the metrics endpoint, and a clear refusal of
a value it cannot use (it never starts half-configured)."""

from __future__ import annotations

import socket

import pytest
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from ecs_canary.config import WorkerSettings
from ecs_canary.telemetry import metrics_address, prometheus_runtime
from ecs_canary.versioning import deployment_config
from worker import workflow_runner

VARIABLES = (
    "TEMPORAL_TASK_QUEUE",
    "ECS_CANARY_MAX_CONCURRENT_ACTIVITIES",
    "ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS",
    "ECS_CANARY_ECS_CALLS_PER_SECOND",
    "ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND",
    "ECS_CANARY_WORKFLOW_SANDBOX",
    "ECS_CANARY_WATCHDOG_SECONDS",
    "ECS_CANARY_BUILD_ID",
    "ECS_CANARY_DEPLOYMENT_NAME",
    "ECS_CANARY_METRICS_PORT",
    "ECS_CANARY_METRICS_HOST",
    "ECS_CANARY_METRICS_REFRESH_SECONDS",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults(env):
    settings = WorkerSettings.from_env()
    assert settings.task_queue == "ecs-deployments"
    assert settings.ecs_calls_per_second == 10
    assert settings.shared_ecs_calls_per_second is None
    assert settings.workflow_sandbox is False
    assert settings.watchdog_seconds == 60
    assert isinstance(workflow_runner(settings), UnsandboxedWorkflowRunner)
    assert settings.version is None
    assert deployment_config(settings.version) is None


@pytest.mark.parametrize(
    ("build_id", "deployment_name", "version"),
    [
        ("7", None, WorkerDeploymentVersion("ecs-canary", "7")),
        ("7", "", WorkerDeploymentVersion("ecs-canary", "7")),
        (
            "v1.4.2+3f9c2d1",
            "payments-canary",
            WorkerDeploymentVersion("payments-canary", "v1.4.2+3f9c2d1"),
        ),
    ],
)
def test_a_build_id_makes_the_worker_a_version_whose_runs_are_pinned(
    env, build_id, deployment_name, version
):
    env.setenv("ECS_CANARY_BUILD_ID", build_id)
    if deployment_name is not None:
        env.setenv("ECS_CANARY_DEPLOYMENT_NAME", deployment_name)
    settings = WorkerSettings.from_env()
    assert settings.version == version
    config = deployment_config(settings.version)
    assert config is not None
    assert config.version == version
    assert config.use_worker_versioning is True
    assert config.default_versioning_behavior == VersioningBehavior.PINNED


def test_an_empty_build_id_leaves_the_worker_unversioned(env):
    env.setenv("ECS_CANARY_BUILD_ID", "")
    env.setenv("ECS_CANARY_DEPLOYMENT_NAME", "payments-canary")
    assert WorkerSettings.from_env().version is None


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "TRUE"])
def test_the_sandbox_can_be_switched_on(env, value):
    env.setenv("ECS_CANARY_WORKFLOW_SANDBOX", value)
    settings = WorkerSettings.from_env()
    assert settings.workflow_sandbox is True
    assert isinstance(workflow_runner(settings), SandboxedWorkflowRunner)


def test_a_shared_budget_is_read(env):
    env.setenv("ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND", "40")
    assert WorkerSettings.from_env().shared_ecs_calls_per_second == 40


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ECS_CANARY_WORKFLOW_SANDBOX", "maybe", "must be true or false"),
        ("ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND", "lots", "must be a number"),
        ("ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND", "-5", "greater than 0"),
        ("ECS_CANARY_ECS_CALLS_PER_SECOND", "0", "greater than 0"),
        ("ECS_CANARY_WATCHDOG_SECONDS", "0", "greater than 0"),
        ("ECS_CANARY_BUILD_ID", "b" * 256, "at most 255 bytes"),
        ("ECS_CANARY_BUILD_ID", "__unversioned__", "must not start with '__'"),
        ("ECS_CANARY_BUILD_ID", "v1 ", "must not contain whitespace"),
        ("ECS_CANARY_DEPLOYMENT_NAME", "ecs.canary", "must not contain '.'"),
        ("ECS_CANARY_DEPLOYMENT_NAME", "n" * 256, "at most 255 bytes"),
        ("ECS_CANARY_DEPLOYMENT_NAME", "__ecs", "must not start with '__'"),
        ("ECS_CANARY_DEPLOYMENT_NAME", "ecs canary", "must not contain whitespace"),
    ],
)
def test_a_value_the_worker_cannot_use_stops_it_with_the_reason(env, name, value, says):
    env.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        WorkerSettings.from_env()
    assert name in str(stopped.value) and says in str(stopped.value)


# Where the worker serves its metrics: ECS_CANARY_METRICS_PORT or `--metrics-port` (which
# wins), on loopback unless ECS_CANARY_METRICS_HOST says otherwise; a port it cannot use stops
# the worker with one line naming where the value came from, and so does a port already taken.


def test_no_port_no_metrics(env):
    settings = WorkerSettings.from_env(["--check"])
    assert settings.metrics_address is None
    assert settings.metrics_refresh_seconds == 10


def test_the_port_from_the_environment_on_loopback(env):
    env.setenv("ECS_CANARY_METRICS_PORT", "9464")
    assert WorkerSettings.from_env().metrics_address == "127.0.0.1:9464"


def test_the_command_line_wins_and_the_host_is_configurable(env):
    env.setenv("ECS_CANARY_METRICS_PORT", "9464")
    env.setenv("ECS_CANARY_METRICS_HOST", "0.0.0.0")
    env.setenv("ECS_CANARY_METRICS_REFRESH_SECONDS", "2.5")
    settings = WorkerSettings.from_env(["--metrics-port", "9500"])
    assert settings.metrics_address == "0.0.0.0:9500"
    assert settings.metrics_refresh_seconds == 2.5
    assert metrics_address({}, ["--metrics-port=9600"]) == "127.0.0.1:9600"


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "94 64"])
def test_a_port_that_is_no_port_stops_the_worker_naming_its_source(port):
    with pytest.raises(SystemExit) as from_env:
        metrics_address({"ECS_CANARY_METRICS_PORT": port})
    with pytest.raises(SystemExit) as from_flag:
        metrics_address({"ECS_CANARY_METRICS_PORT": "9464"}, ["--metrics-port", port])

    assert str(from_env.value) == (
        f"ECS_CANARY_METRICS_PORT must be a port from 1 to 65535, got {port!r}"
    )
    assert str(from_flag.value) == f"--metrics-port must be a port from 1 to 65535, got {port!r}"


def test_a_port_already_taken_stops_the_worker_with_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SystemExit) as stopped:
            prometheus_runtime(address)

    message = str(stopped.value)
    assert message.startswith(f"worker: cannot serve metrics on {address}: ")
    assert "Address already in use" in message and "\n" not in message
