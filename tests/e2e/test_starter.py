"""starter.py as a person uses it: real subprocesses against the dev server, the in-process
worker and the ECS emulator. Subprocesses run under asyncio so the worker keeps working."""

from __future__ import annotations

import asyncio
import codecs
import os
import pty
import pwd
import re
import sys
from urllib.parse import quote

import pytest
from temporalio.client import Client, WorkflowHandle

from ecs_canary.models import DeploymentStatus
from ecs_canary.names import workflow_id_for
from tests.helpers import (
    CLUSTER,
    ROOT,
    STARTER_USER,
    Done,
    Runs,
    free_port,
    in_order,
    is_running,
    run_status,
    status,
    wait_until,
)


def workflow_id(service: str = "myapp") -> str:
    return workflow_id_for(CLUSTER, service)


async def at_gate(client: Client, wid: str, runs: Runs) -> WorkflowHandle:
    """Wait for a run started under `wid` to open its gate; returns a handle to that run."""
    await wait_until(lambda: is_running(client.get_workflow_handle(wid)), timeout=20)
    run = await runs.track(wid)

    async def gate_open() -> bool:
        return (await status(run)).gate_open

    await wait_until(gate_open, timeout=60)
    return run


async def test_deploy_wait_and_approve_by_update(starter, worker, client, requests, runs, ui_port):
    wid = workflow_id()
    deploy = await starter.spawn("deploy", starter.request_file(requests.raw()), "--wait")
    run = await at_gate(client, wid, runs)
    watch = await starter.spawn("watch", wid)

    shown = await starter.run("status", wid, "--json")
    assert shown.code == 0, shown.err
    current = DeploymentStatus.model_validate_json(shown.out)
    assert (current.stage.value, current.gate_open, current.main_service) == (
        "verification",
        True,
        "myapp",
    )
    assert current.gate_deadline is not None and current.gate_deadline.tzinfo is not None
    # TEMPORAL_UI_URL is where the links go (the default, TEMPORAL_UI_PORT, is checked below).
    elsewhere = {**starter.env, "TEMPORAL_UI_URL": "https://temporal.example.com/"}
    readable = await starter.run("status", wid, env=elsewhere)
    assert "stage:     verification" in readable.out
    gate = next(line for line in readable.lines if line.startswith("gate:"))
    parts = re.fullmatch(r"gate: +OPEN, decide by (\S+ )?(\S+) UTC \(\d+m\d*s? left\)", gate)
    assert parts and parts[2] == current.gate_deadline.strftime("%H:%M:%S"), gate
    quoted = quote(wid, safe="")
    assert f"web ui:    https://temporal.example.com/namespaces/default/workflows/{quoted}" in (
        readable.lines
    )

    approved = await starter.run("approve", wid, "--by", "alice", "--reason", "canary looks good")
    assert approved.code == 0, approved.err
    assert "approve accepted: approve by alice (update)" in approved.out

    done = await deploy.finish()
    assert done.code == 0, done.err
    assert done.err == ""
    assert f"workflow id: {wid}" in done.out
    link = f"http://localhost:{ui_port}/namespaces/default/workflows/{quoted}"
    assert f"web ui:      {link}" in done.lines
    assert f"run id:      {run.run_id}" in done.lines
    # The hints name the run: a decision is for this run, not the service's next one.
    assert (
        f"temporal workflow signal --workflow-id {wid} --run-id {run.run_id} --name approve "
        f"""--input '{{"by":"{STARTER_USER}"}}'"""
    ) in [line.strip() for line in done.lines]
    assert any(
        f"python starter.py approve {wid} --run-id {run.run_id} --by {STARTER_USER}" in line
        for line in done.lines
    )
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
            "gate open: waiting for approval, decide by ",
            "decision: approve by alice (update): canary looks good",
            "stage verification done",
            "stage canary_delete started",
            "stage canary_delete done",
            "stage rolling_deploy started",
            "stage rolling_deploy done",
        ],
    ), watched.out
    watched_hint = f"approve: python starter.py approve {wid} --run-id {run.run_id} --by "
    assert any(watched_hint in line for line in watched.lines), watched.out
    assert watched.lines[-1] == "outcome: succeeded"


async def test_invalid_request_starts_nothing(starter, client, requests, ecs, ecs_state):
    bad = requests.raw(service="broken", task_definition={"containerDefinitions": []})
    done = await starter.run("deploy", starter.request_file(bad), "--wait")
    assert done.code == 2
    assert done.out == ""
    assert len(done.err.strip().splitlines()) == 1
    assert done.err.startswith(
        "invalid request: task_definition: containerDefinitions must list at least one container"
    )
    assert await run_status(client.get_workflow_handle(workflow_id("broken"))) is None
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []
    assert ecs.list_services(cluster=ecs_state["cluster"])["serviceArns"] == []

    port = free_port()
    unreachable = await starter.run(
        "status", "x", env={**starter.env, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}"}
    )
    assert unreachable.code == 1
    assert unreachable.err.startswith(f"cannot reach Temporal at 127.0.0.1:{port}: ")
    assert len(unreachable.err.strip().splitlines()) == 1


async def test_second_deploy_and_early_approve_refused_then_reject(
    starter, worker, client, requests, runs, emulator
):
    wid = workflow_id()
    # A slow canary: its task takes 10x the emulator's start delay, a minute here, so that it
    # is still starting after the four commands below on a machine busy with other tests.
    emulator.admin.settings(task_start_seconds=6)
    request = starter.request_file(requests.raw(image="nginx:slow-1.27"))
    first = await starter.run("deploy", request)
    assert first.code == 0, first.err
    run = await runs.track(wid)
    watch = await starter.spawn("watch", wid)

    second = await starter.run("deploy", request)
    assert second.code == 1
    assert len(second.err.strip().splitlines()) == 1
    assert "already running" in second.err and wid in second.err
    assert f"python starter.py status {wid}" in second.err

    early = await starter.run("approve", wid, "--by", "alice")
    assert early.code == 1
    assert early.err.strip() == (
        "approve refused: the canary is not steady yet; an approval must follow verification"
    )

    # Live counts come from the wait activity's heartbeats, while the slow canary starts.
    await wait_until(lambda: watch.printed("canary_deploy: 0/1 running"), timeout=20)
    rejected = await starter.run("reject", wid, "--by", "bob", "--reason", "wrong image")
    assert rejected.code == 0, rejected.err
    assert "reject accepted: reject by bob (update): wrong image" in rejected.out

    watched = await watch.finish()
    assert watched.code == 0, watched.err
    assert watched.lines[-1] == "outcome: rejected (reject (update) by bob: wrong image)"
    assert "stage canary_deploy started" in watched.lines
    assert "Waiting for pending tasks to finish. 0/1 running ..." in watched.lines
    result = await run.result()
    assert result.outcome.value == "rejected" and result.canary_deleted


@pytest.mark.slow
async def test_pending_and_history(starter, worker, client, requests, runs, ui_port):
    wid = workflow_id()
    request = starter.request_file(requests.raw())
    assert (await starter.run("deploy", request)).code == 0
    first = await at_gate(client, wid, runs)
    approved = await starter.run("approve", wid)  # by $USER
    assert f"approve accepted: approve by {STARTER_USER} (update)" in approved.out, approved.err
    assert (await first.result()).outcome.value == "succeeded"

    # The finished run's id is reused by the next deployment of the service.
    assert (await starter.run("deploy", request)).code == 0
    second = await at_gate(client, wid, runs)
    assert second.run_id != first.run_id

    listed: list[Done] = []

    async def pending_shows_only_the_waiting_run() -> bool:
        listed.append(await starter.run("pending", "--service", "myapp"))
        out = listed[-1].out
        return f"(run {second.run_id})" in out and first.run_id not in out

    await wait_until(pending_shows_only_the_waiting_run, timeout=30, every=0.5)
    out = listed[-1].lines
    assert "  service:   myapp on ecs-canary" in out
    assert "  gate:      OPEN" in " ".join(out)
    hint = f"python starter.py approve {wid} --run-id {second.run_id} --by {STARTER_USER}"
    assert f"  approve:   {hint}" in out
    assert any(line.startswith("  waiting:   since ") for line in out)
    assert out[-1] == (
        f"web ui:      http://localhost:{ui_port}/namespaces/default/workflows?query="
        "DeploymentStage%3D%27verification%27+AND+ExecutionStatus%3D%27Running%27"
        "+AND+EcsService%3D%27myapp%27"
    )
    other = await starter.run("pending", "--service", "nosuchservice")
    assert other.lines[0] == "no deployment is waiting at a verification gate"
    assert other.lines[1].endswith("+AND+EcsService%3D%27nosuchservice%27")
    # Without $USER (cron, some containers) the hints name the login name, never "unknown".
    anonymous = {
        k: v for k, v in starter.env.items() if k not in ("USER", "LOGNAME", "LNAME", "USERNAME")
    }
    hinted = await starter.run("pending", "--service", "myapp", env=anonymous)
    login = pwd.getpwuid(os.getuid()).pw_name
    hint = f"python starter.py approve {wid} --run-id {second.run_id} --by {login}"
    assert f"  approve:   {hint}" in hinted.lines

    signalled = await starter.run("reject", wid, "--by", "bob", "--signal")
    assert signalled.code == 0, signalled.err
    assert (await second.result()).outcome.value == "rejected"

    seen: list[Done] = []

    async def history_shows_both() -> bool:
        seen.append(await starter.run("history", "myapp", "--limit", "20"))
        return first.run_id in seen[-1].out and second.run_id in seen[-1].out

    await wait_until(history_shows_both, timeout=30, every=0.5)
    rows = {line.split()[-1]: line for line in seen[-1].lines[1:]}
    assert seen[-1].lines[0].split()[:4] == ["STARTED", "DURATION", "STATUS", "OUTCOME"]
    assert " succeeded " in rows[first.run_id] and f" {STARTER_USER} " in rows[first.run_id]
    assert " rejected " in rows[second.run_id] and " bob " in rows[second.run_id]
    newest_first = [line.split()[-1] for line in seen[-1].lines[1:]]
    assert newest_first.index(second.run_id) < newest_first.index(first.run_id)


async def test_failed_deploy_wait_exits_1_with_the_reason(
    starter, worker, task_queue, requests, runs
):
    # The image cannot be pulled: the canary deploy fails. --task-queue beats the environment.
    request = starter.request_file(requests.raw(image="nginx:nopull-1"))
    env = {**starter.env, "TEMPORAL_TASK_QUEUE": "no-worker-here"}
    done = await starter.run("deploy", request, "--wait", "--task-queue", task_queue, env=env)
    assert done.code == 1
    assert len(done.err.strip().splitlines()) == 1
    assert done.err.startswith("deployment failed: "), done.err
    assert "CannotPullContainerError" in done.err
    assert done.lines[-1].startswith("outcome: failed (")
    await runs.track(workflow_id())


async def test_watch_reports_a_cancelled_run_with_its_result(
    starter, worker, client, requests, runs
):
    """A cancellation carries no result: watch takes it from the status query instead."""
    wid = workflow_id()
    assert (await starter.run("deploy", starter.request_file(requests.raw()))).code == 0
    run = await at_gate(client, wid, runs)
    watch = await starter.spawn("watch", wid)
    await wait_until(lambda: watch.printed("stage verification started"), timeout=20)

    await run.cancel()
    watched = await watch.finish()

    assert watched.code == 1
    assert watched.lines[-1].startswith("outcome: cancelled"), watched.out
    assert watched.err.strip().startswith("deployment cancelled"), watched.err
    final = await status(run)
    assert final.result is not None and final.result.canary_deleted


class PseudoTerminal:
    """The terminal end of a pseudo-terminal: what a program writes to it, read as it comes,
    escape codes dropped. `fd` is the program's end, to give it as stdout."""

    def __init__(self) -> None:
        self._ours, self.fd = pty.openpty()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.raw = ""
        self.closed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self._ours, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self._ours, 65536)
        except OSError:  # EIO: every program holding the other end has closed it
            data = b""
        self.raw += self._decoder.decode(data, final=not data)
        if not data:
            asyncio.get_running_loop().remove_reader(self._ours)
            os.close(self._ours)
            self.closed.set()

    @property
    def text(self) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.raw)


async def test_watch_on_a_terminal_draws_the_live_view(starter, worker, client, requests, runs):
    """Under a (pseudo-)terminal `watch` draws the run with rich, the gate's time left and the
    approvals so far included, keeps the story's lines, and ends with the outcome line."""
    wid = workflow_id()
    assert (await starter.run("deploy", starter.request_file(requests.raw()))).code == 0
    run = await at_gate(client, wid, runs)
    screen = PseudoTerminal()
    env = {**starter.env, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("TTY_INTERACTIVE", None)
    watch = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", "watch", wid, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.DEVNULL, stdout=screen.fd, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(screen.fd)
    try:
        await wait_until(lambda: "gate          OPEN, decide by " in screen.text, timeout=20)
        assert "approvals     none yet (0 of 1)" in screen.text
        approved = await starter.run("approve", wid, "--by", "alice")
        assert approved.code == 0, approved.err
        _, err = await asyncio.wait_for(watch.communicate(), 60)
        await asyncio.wait_for(screen.closed.wait(), 10)
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
    assert watch.returncode == 0, err.decode()
    assert "\x1b[" in screen.raw  # redrawn in place
    lines = [line.rstrip() for line in screen.text.splitlines()]
    assert any(line.endswith("decision: approve by alice (update)") for line in lines)
    assert "decision      approve by alice (update)" in lines  # the last render, kept
    assert lines[-1] == "outcome: succeeded"
    assert (await run.result()).outcome.value == "succeeded"
