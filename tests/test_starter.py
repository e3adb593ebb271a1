"""starter.py as a person uses it: real subprocesses against the dev server, the in-process
worker and the ECS emulator. Subprocesses run under asyncio so the worker keeps working."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from ecs_canary.models import DeploymentResult, DeploymentStatus
from tests.support import in_order, status, wait_until

REPO = Path(__file__).resolve().parent.parent
USER = "tester"


@dataclass
class Done:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


class Running:
    """A starter process whose stdout is collected line by line while it runs."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def printed(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def finish(self, timeout: float = 60) -> Done:
        assert self.proc.stderr is not None
        err = await asyncio.wait_for(self.proc.stderr.read(), timeout)
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return Done(code, "\n".join(self.lines), err.decode())


class Starter:
    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, *args: str, env: dict[str, str] | None = None) -> Running:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "starter.py",
            *args,
            cwd=REPO,
            env=env or self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        return Running(proc)

    async def run(self, *args: str, env: dict[str, str] | None = None) -> Done:
        return await (await self.spawn(*args, env=env)).finish()

    def request_file(self, request: dict[str, Any], name: str = "request.json") -> str:
        path = self.tmp_path / name
        path.write_text(json.dumps(request))
        return str(path)


@pytest.fixture
async def cli(temporal_env, task_queue, emulator, tmp_path) -> AsyncIterator[Starter]:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": task_queue,
        "USER": USER,
    }
    for name in ("TEMPORAL_PROFILE", "TEMPORAL_UI_URL"):
        env.pop(name, None)
    starter = Starter(env, tmp_path)
    yield starter
    for proc in starter.procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def workflow_id(service: str = "myapp", cluster: str = "ecs-canary") -> str:
    return f"ecs-canary/{cluster}/{service}"


async def exists(handle: WorkflowHandle) -> bool:
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def running(handle: WorkflowHandle) -> bool:
    """True once a run under this id is open (an earlier test's closed run may share the id)."""
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING


async def at_gate(client: Client, wid: str, started: list[WorkflowHandle]) -> WorkflowHandle:
    """Wait for the run started under `wid` to open its gate; returns a handle to that run."""
    handle = client.get_workflow_handle(wid, result_type=DeploymentResult)
    await wait_until(lambda: running(handle), timeout=20)
    run = client.get_workflow_handle(
        wid, run_id=(await handle.describe()).run_id, result_type=DeploymentResult
    )
    started.append(run)

    async def gate_open() -> bool:
        return (await status(run)).gate_open

    await wait_until(gate_open, timeout=60)
    return run


async def test_deploy_wait_and_approve_by_update(cli, worker, client, requests, started):
    wid = workflow_id()
    deploy = await cli.spawn("deploy", cli.request_file(requests.raw()), "--wait")
    run = await at_gate(client, wid, started)
    watch = await cli.spawn("watch", wid)

    shown = await cli.run("status", wid, "--json")
    assert shown.code == 0, shown.err
    current = DeploymentStatus.model_validate_json(shown.out)
    assert (current.stage.value, current.gate_open, current.main_service) == (
        "verification",
        True,
        "myapp",
    )
    readable = await cli.run("status", wid)
    assert "stage:     verification" in readable.out and "OPEN" in readable.out

    approved = await cli.run("approve", wid, "--by", "alice", "--reason", "canary looks good")
    assert approved.code == 0, approved.err
    assert "approve accepted: approve by alice (update)" in approved.out

    done = await deploy.finish()
    assert done.code == 0, done.err
    assert done.err == ""
    assert f"workflow id: {wid}" in done.out
    assert "/namespaces/default/workflows/ecs-canary%2Fecs-canary%2Fmyapp" in done.out
    assert (
        f"temporal workflow signal --workflow-id {wid} --name approve --input "
        f"""'{{"by":"{USER}"}}'"""
    ) in [line.strip() for line in done.lines]
    assert any(f"python starter.py approve {wid} --by {USER}" in line for line in done.lines)
    assert done.lines[-1] == "outcome: succeeded"
    assert (await run.result()).outcome.value == "succeeded"
    described = await run.describe()
    assert await described.static_summary() == (
        "Deploy myapp on ecs-canary: nginx:1.27 (canary 1, then 3)"
    )
    for part in ("**Service:** myapp", "**Cluster:** ecs-canary", "**Desired count:** 3"):
        assert part in (await described.static_details() or "")

    watched = await watch.finish()
    assert watched.code == 0, watched.err
    assert in_order(
        watched.lines,
        [
            "stage canary_deploy started",
            "stage canary_deploy done",
            "stage verification started",
            "gate open: waiting for approval",
            "decision: approve by alice (update): canary looks good",
            "stage verification done",
            "stage canary_delete started",
            "stage canary_delete done",
            "stage rolling_deploy started",
            "stage rolling_deploy done",
        ],
    ), watched.out
    assert watched.lines[-1] == "outcome: succeeded"


async def test_invalid_request_starts_nothing(cli, client, requests, ecs, ecs_state):
    bad = requests.raw(service="broken", task_definition={"containerDefinitions": []})
    done = await cli.run("deploy", cli.request_file(bad), "--wait")
    assert done.code == 2
    assert done.out == ""
    assert len(done.err.strip().splitlines()) == 1
    assert done.err.startswith(
        "invalid request: task_definition: containerDefinitions must list at least one container"
    )
    assert not await exists(client.get_workflow_handle(workflow_id("broken")))
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []
    assert ecs.list_services(cluster=ecs_state["cluster"])["serviceArns"] == []

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = await cli.run(
        "status", "x", env={**cli.env, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    )
    assert unreachable.code == 1
    assert unreachable.err.startswith(f"cannot reach Temporal at 127.0.0.1:{port}: ")
    assert len(unreachable.err.strip().splitlines()) == 1


async def test_second_deploy_and_early_approve_refused_then_reject(
    cli, worker, client, requests, started
):
    wid = workflow_id()
    # A slow canary: its task takes 10x the emulator's start delay.
    request = cli.request_file(requests.raw(image="nginx:slow-1.27"))
    first = await cli.run("deploy", request)
    assert first.code == 0, first.err
    run = client.get_workflow_handle(
        wid, run_id=(await client.get_workflow_handle(wid).describe()).run_id
    )
    started.append(run)
    watch = await cli.spawn("watch", wid)

    second = await cli.run("deploy", request)
    assert second.code == 1
    assert len(second.err.strip().splitlines()) == 1
    assert "already running" in second.err and wid in second.err
    assert f"python starter.py status {wid}" in second.err

    early = await cli.run("approve", wid, "--by", "alice")
    assert early.code == 1
    assert early.err.strip() == (
        "approve refused: the canary is not steady yet; an approval must follow verification"
    )

    # Live counts come from the wait activity's heartbeats, while the slow canary starts.
    await wait_until(lambda: _true(watch.printed("canary_deploy: 0/1 running")), timeout=20)
    rejected = await cli.run("reject", wid, "--by", "bob", "--reason", "wrong image")
    assert rejected.code == 0, rejected.err
    assert "reject accepted: reject by bob (update): wrong image" in rejected.out

    watched = await watch.finish()
    assert watched.code == 0, watched.err
    assert watched.lines[-1] == "outcome: rejected (reject (update) by bob: wrong image)"
    assert "stage canary_deploy started" in watched.lines
    assert "Waiting for pending tasks to finish. 0/1 running ..." in watched.lines
    result = DeploymentResult.model_validate(await run.result())
    assert result.outcome.value == "rejected" and result.canary_deleted


async def _true(value: bool) -> bool:
    return value


async def test_pending_and_history(cli, worker, client, requests, started):
    wid = workflow_id()
    request = cli.request_file(requests.raw())
    assert (await cli.run("deploy", request)).code == 0
    first = await at_gate(client, wid, started)
    assert (await cli.run("approve", wid, "--by", "alice")).code == 0
    assert (await first.result()).outcome.value == "succeeded"

    # The finished run's id is reused by the next deployment of the service.
    assert (await cli.run("deploy", request)).code == 0
    second = await at_gate(client, wid, started)
    assert second.run_id != first.run_id

    listed: list[Done] = []

    async def pending_shows_only_the_waiting_run() -> bool:
        listed.append(await cli.run("pending", "--service", "myapp"))
        out = listed[-1].out
        return f"(run {second.run_id})" in out and first.run_id not in out

    await wait_until(pending_shows_only_the_waiting_run, timeout=30, every=0.5)
    out = listed[-1].lines
    assert "  service:   myapp on ecs-canary" in out
    assert "  gate:      OPEN" in " ".join(out)
    assert f"  approve:   python starter.py approve {wid} --by {USER}" in out
    assert any(line.startswith("  waiting:   since ") for line in out)
    other = await cli.run("pending", "--service", "nosuchservice")
    assert other.out.strip() == "no deployment is waiting at a verification gate"

    signalled = await cli.run("reject", wid, "--by", "bob", "--signal")
    assert signalled.code == 0, signalled.err
    assert (await second.result()).outcome.value == "rejected"

    seen: list[Done] = []

    async def history_shows_both() -> bool:
        seen.append(await cli.run("history", "myapp", "--limit", "20"))
        return first.run_id in seen[-1].out and second.run_id in seen[-1].out

    await wait_until(history_shows_both, timeout=30, every=0.5)
    rows = {line.split()[-1]: line for line in seen[-1].lines[1:]}
    assert seen[-1].lines[0].split()[:4] == ["STARTED", "DURATION", "STATUS", "OUTCOME"]
    assert " succeeded " in rows[first.run_id] and " alice " in rows[first.run_id]
    assert " rejected " in rows[second.run_id] and " bob " in rows[second.run_id]
    newest_first = [line.split()[-1] for line in seen[-1].lines[1:]]
    assert newest_first.index(second.run_id) < newest_first.index(first.run_id)


async def test_failed_deploy_wait_exits_1_with_the_reason(cli, worker, task_queue, requests):
    # The image cannot be pulled: the canary deploy fails. --task-queue beats the environment.
    request = cli.request_file(requests.raw(image="nginx:nopull-1"))
    env = {**cli.env, "TEMPORAL_TASK_QUEUE": "no-worker-here"}
    done = await cli.run("deploy", request, "--wait", "--task-queue", task_queue, env=env)
    assert done.code == 1
    assert len(done.err.strip().splitlines()) == 1
    assert done.err.startswith("deployment failed: "), done.err
    assert "CannotPullContainerError" in done.err
    assert done.lines[-1].startswith("outcome: failed (")
