"""The local stack behind `make up`, `make status` and `make down`, and the example requests.

The stack tests run the real thing (ECS emulator, Temporal dev server, worker) through make,
on free ports and in their own LOCAL_DIR so they never meet a developer's stack. They take
about half a minute: two starts and two stops of the Temporal dev server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from ecs_canary.models import DeploymentRequest
from ecs_canary.names import TASK_QUEUE, WORKFLOW_TYPE, workflow_id_for
from ecs_canary.temporal import DATA_CONVERTER
from ecs_canary.versioning import DEFAULT_DEPLOYMENT_NAME
from tests.helpers import (
    CLUSTER,
    ROOT,
    START_SECONDS,
    STOP_SECONDS,
    emulator_client,
    free_ports,
    gate_is_open,
    replay_histories,
    scrape,
    status,
    wait_until,
)
from tests.helpers.demo_script import demo
from tests.helpers.processes import TEMPORAL

# Every example deployment request (train.json is a release train: test_train_request.py).
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.json") if p.name != "train.json")
COMPONENTS = ("emulator", "temporal", "worker")


FAKE_SEED = {
    "cluster": CLUSTER,
    "subnets": ["subnet-aaaa1111", "subnet-bbbb2222"],
    "security_group": "sg-cccc3333",
}


# --- The examples -----------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_is_a_valid_request_once_the_emulator_ids_are_filled_in(example: Path) -> None:
    raw = json.loads(example.read_text())
    resolved = demo.resolve(raw, FAKE_SEED)

    request = DeploymentRequest.model_validate(resolved)

    assert "<emulator-" not in json.dumps(resolved)
    network = request.service_definition["networkConfiguration"]["awsvpcConfiguration"]
    assert network["subnets"] == FAKE_SEED["subnets"]
    assert network["securityGroups"] == [FAKE_SEED["security_group"]]
    assert request.cluster == CLUSTER


def test_request_example_deploys_myapp_with_three_fargate_tasks() -> None:
    request = DeploymentRequest.model_validate(
        demo.resolve(json.loads((ROOT / "examples" / "request.json").read_text()), FAKE_SEED)
    )
    assert (request.service_name, request.desired_count) == ("myapp", 3)
    assert request.service_definition["launchType"] == "FARGATE"
    assert request.task_definition["networkMode"] == "awsvpc"


# --- The stack --------------------------------------------------------------------------------


def _make(env: dict[str, str], target: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), target],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and done.returncode != 0:
        pytest.fail(f"make {target} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def _pids(local_dir: Path, components: tuple[str, ...] = COMPONENTS) -> dict[str, int]:
    return {
        name: int((local_dir / f"{name}.pid").read_text().split()[0])
        for name in components
        if (local_dir / f"{name}.pid").exists()
    }


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped (/proc: CI images may lack ps)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Stack:
    def __init__(self, env: dict[str, str], local_dir: Path) -> None:
        self.env, self.local_dir = env, local_dir
        self.emulator_url = f"http://127.0.0.1:{env['ECS_EMULATOR_PORT']}"
        self.temporal_address = f"127.0.0.1:{env['TEMPORAL_PORT']}"
        self.metrics_url = f"http://127.0.0.1:{env['ECS_CANARY_METRICS_PORT']}/metrics"

    def make(self, target: str, check: bool = True) -> subprocess.CompletedProcess:
        return _make(self.env, target, check)

    def pids(self) -> dict[str, int]:
        return _pids(self.local_dir)

    def seed(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.emulator_url}/_emulator/info") as response:
            return json.load(response)

    async def client(self) -> Client:
        return await Client.connect(self.temporal_address, data_converter=DATA_CONVERTER)


def _stack_env(local_dir: Path) -> dict[str, str]:
    temporal, ui, emulator, metrics = free_ports(4)
    env = {
        **os.environ,
        "TEMPORAL_PORT": str(temporal),
        "TEMPORAL_UI_PORT": str(ui),
        "ECS_EMULATOR_PORT": str(emulator),
        "ECS_CANARY_METRICS_PORT": str(metrics),
        # The worker's gauges of what is in flight, read every second instead of every 10.
        "ECS_CANARY_METRICS_REFRESH_SECONDS": "1",
        # The emulator's tasks start and stop at the tests' speed, not a demo's.
        "ECS_EMULATOR_TASK_START_SECONDS": str(START_SECONDS),
        "ECS_EMULATOR_TASK_STOP_SECONDS": str(STOP_SECONDS),
        "LOCAL_DIR": str(local_dir),
    }
    env.pop("MAKEFLAGS", None)
    return env


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    local_dir = tmp_path_factory.mktemp("local")
    stack = Stack(_stack_env(local_dir), local_dir)
    try:
        stack.make("up")
        yield stack
    finally:
        _make(stack.env, "down", check=False)


def test_up_starts_the_emulator_temporal_and_the_worker(stack: Stack) -> None:
    pids = stack.pids()
    assert set(pids) == set(COMPONENTS)
    assert all(_alive(pid) for pid in pids.values())

    shown = stack.make("status").stdout
    for name, pid in pids.items():
        assert f"{name}" in shown and f"running (pid {pid})" in shown
    assert stack.temporal_address in shown and stack.emulator_url in shown
    assert stack.metrics_url in shown
    assert "Worker started" in (stack.local_dir / "worker.log").read_text()
    # The worker's metrics: the SDK's and the product's on one endpoint.
    served = scrape(stack.metrics_url).names()
    assert "temporal_num_pollers" in served
    assert {"ecs_canary_deployments_in_flight", "ecs_canary_gates_open"} <= served
    assert (stack.local_dir / "temporal.db").exists()


def test_up_again_starts_nothing_new(stack: Stack) -> None:
    before = stack.pids()
    stack.make("up")
    assert stack.pids() == before


def test_a_service_on_the_emulator_starts_its_tasks_and_reaches_steady_state(
    stack: Stack,
) -> None:
    seed = stack.seed()
    ecs = emulator_client(stack.emulator_url, region=seed["region"])
    request = demo.resolve(json.loads((ROOT / "examples" / "request.json").read_text()), seed)
    arn = ecs.register_task_definition(**request["task_definition"])["taskDefinition"][
        "taskDefinitionArn"
    ]
    ecs.create_service(
        cluster=seed["cluster"],
        serviceName="smoke",
        taskDefinition=arn,
        **{**request["service_definition"], "desiredCount": 2},
    )
    ecs.get_waiter("services_stable").wait(
        cluster=seed["cluster"], services=["smoke"], WaiterConfig={"Delay": 0.5}
    )

    service = ecs.describe_services(cluster=seed["cluster"], services=["smoke"])["services"][0]
    assert service["runningCount"] == 2
    events = [event["message"] for event in reversed(service["events"])]
    assert any(e.startswith("(service smoke) has started 2 tasks: (task ") for e in events)
    assert events[-1] == "(service smoke) has reached a steady state."


async def test_down_stops_exactly_what_up_started_and_runs_survive_a_restart(
    stack: Stack,
) -> None:
    # A run waiting at the gate when the stack stops.
    request = demo.resolve(
        json.loads((ROOT / "examples" / "request.json").read_text()), stack.seed()
    )
    request["poll_interval_seconds"] = 0.2
    client = await stack.client()
    # The stack's worker polls the default task queue.
    handle = await client.start_workflow(
        WORKFLOW_TYPE, request, id=workflow_id_for(CLUSTER, "myapp"), task_queue=TASK_QUEUE
    )
    await wait_until(lambda: gate_is_open(handle), timeout=60, every=0.2)
    started = stack.pids()

    down = stack.make("down").stdout
    for name, pid in started.items():
        assert f"stopped {name} (pid {pid})" in down
        assert not _alive(pid), f"{name} (pid {pid}) still runs after make down"
    assert stack.pids() == {}
    assert "not running" in stack.make("status").stdout

    # Temporal released its SQLite file: it starts again on it, and the run is still there.
    stack.make("up")
    assert set(stack.pids().values()).isdisjoint(started.values())
    # The new worker's gauges count the run waiting at its gate: read from Temporal, not
    # from a count the old worker kept. Its endpoint refused connections for all of 30 s once,
    # in a fresh-clone CI run beside the whole suite: the wait allows a slow start.
    await wait_until(lambda: _at_the_gate_in_metrics(stack.metrics_url), timeout=60, every=0.5)
    client = await stack.client()
    handle = client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    current = await status(handle)
    assert (current.stage.value, current.gate_open) == ("verification", True)
    await handle.terminate("test over")
    assert await replay_histories([await handle.fetch_history()]) == 1


def _at_the_gate_in_metrics(url: str) -> bool:
    metrics = scrape(url)
    return (
        metrics.value("ecs_canary_deployments_in_flight", stage="verification") == 1
        and metrics.value("ecs_canary_gates_open") == 1
    )


def test_down_leaves_alone_a_process_that_reuses_a_remembered_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # Its pid, but not the start time `up` wrote down: not a process `up` started.
        (tmp_path / "worker.pid").write_text(f"{bystander.pid} Mon_Jan_1_00:00:00_2024\n")
        down = _make(_stack_env(tmp_path), "down").stdout
        assert "stopped" not in down
        assert bystander.poll() is None
        assert not (tmp_path / "worker.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()


def test_up_refuses_a_port_taken_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {**_stack_env(tmp_path), "ECS_EMULATOR_PORT": str(taken.getsockname()[1])}
        done = _make(env, "up", check=False)
    assert done.returncode != 0
    assert f"port {env['ECS_EMULATOR_PORT']} (ECS_EMULATOR_PORT) is already in use" in done.stderr
    assert not any(_alive(pid) for pid in _pids(tmp_path).values())


def _temporal_that_panics(tmp_path: Path, times: int) -> tuple[Path, Path]:
    """A `temporal` that panics the first `times` times it is asked for a dev server, as the
    real one does when a port it picked at random was taken meanwhile, and is the real one
    otherwise; and the file counting the server starts it was asked for."""
    started, fake = tmp_path / "server-starts", tmp_path / "temporal"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'if [[ "$1 $2" == "server start-dev" ]]; then\n'
        f'    echo start >>"{started}"\n'
        f'    if [[ $(wc -l <"{started}") -le {times} ]]; then\n'
        '        echo "panic: runtime error: invalid memory address or nil pointer dereference"\n'
        "        exit 2\n"
        "    fi\n"
        "fi\n"
        f'exec "{TEMPORAL}" "$@"\n'
    )
    fake.chmod(0o755)
    return fake, started


def test_up_starts_temporal_once_more_when_it_panics_during_startup(tmp_path: Path) -> None:
    """The first start panics: `up` keeps its log, starts it once more, and the stack runs."""
    fake, started = _temporal_that_panics(tmp_path, times=1)
    local_dir = tmp_path / "local"
    env = {**_stack_env(local_dir), "TEMPORAL_CLI": str(fake)}
    try:
        done = _make(env, "up")
        assert "temporal panicked during startup" in done.stdout
        assert started.read_text().split() == ["start", "start"]
        assert "panic:" in (local_dir / "temporal.log.1").read_text()
        pids = _pids(local_dir)
        assert set(pids) == set(COMPONENTS) and all(map(_alive, pids.values()))
    finally:
        _make(env, "down", check=False)


def test_up_gives_up_when_temporal_panics_again(tmp_path: Path) -> None:
    """A second panic is not a port taken by chance: `up` fails and says why."""
    fake, started = _temporal_that_panics(tmp_path, times=2)
    local_dir = tmp_path / "local"
    env = {**_stack_env(local_dir), "TEMPORAL_CLI": str(fake)}
    try:
        done = _make(env, "up", check=False)
        assert done.returncode != 0
        assert "temporal exited during startup" in done.stderr
        assert started.read_text().split() == ["start", "start"]
        assert not any(map(_alive, _pids(local_dir, ("temporal",)).values()))
    finally:
        _make(env, "down", check=False)


# --- Builds of the worker (README, "Upgrading the worker") ------------------------------------


def _deployment(stack: Stack, *args: str) -> dict[str, Any]:
    """`temporal worker deployment ...` against the stack, its JSON output."""
    done = subprocess.run(
        [str(TEMPORAL), "worker", "deployment", *args, "--output", "json"],
        env={**stack.env, "TEMPORAL_ADDRESS": stack.temporal_address},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _current_build(stack: Stack) -> str:
    described = _deployment(stack, "describe", "--name", DEFAULT_DEPLOYMENT_NAME)
    return described["routingConfig"]["currentVersionBuildID"]


def _stop_build(stack: Stack, build_id: str) -> subprocess.CompletedProcess:
    script = str(ROOT / "scripts" / "local_stack.sh")
    return subprocess.run(
        [script, "stop-build", build_id], env=stack.env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_up_with_a_build_id_starts_that_build_beside_the_one_running(tmp_path: Path) -> None:
    env = _stack_env(tmp_path)
    stack = Stack(env, tmp_path)
    try:
        first = _make({**env, "ECS_CANARY_BUILD_ID": "1"}, "up").stdout
        assert "build 1 is the current version of Worker Deployment ecs-canary" in first
        assert _current_build(stack) == "1"
        build_1 = _pids(tmp_path, ("worker-1",))["worker-1"]

        # Each build serves its own metrics: a port given for the first is not the second's.
        (second_metrics,) = free_ports(1)
        second_env = {"ECS_CANARY_BUILD_ID": "2", "ECS_CANARY_METRICS_PORT": f"{second_metrics}"}
        second = _make({**env, **second_env}, "up").stdout
        command = next(
            line.strip() for line in second.splitlines() if "set-current-version" in line
        )
        assert "worker-1  running" in second and "worker-2  running" in second
        assert _pids(tmp_path, ("worker-1",))["worker-1"] == build_1
        assert "Worker started" in (tmp_path / "worker-2.log").read_text()
        assert _current_build(stack) == "1"  # until an operator says otherwise
        refused = _stop_build(stack, "1")
        assert refused.returncode != 0 and "build 1 is the current version" in refused.stderr

        # The command `up` printed, as an operator runs it (without the prompt).
        subprocess.run([*command.split(), "--yes"], check=True, capture_output=True, timeout=30)
        assert _current_build(stack) == "2"
        refused = _stop_build(stack, "1")
        assert refused.returncode != 0 and "build 1 is still draining" in refused.stderr
        assert _alive(build_1)

        down = stack.make("down").stdout
        assert "stopped worker-1" in down and "stopped worker-2" in down
        assert not _alive(build_1)
    finally:
        _make(env, "down", check=False)
