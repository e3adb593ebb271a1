"""The command lines people use, run as real subprocesses under asyncio (so the in-process
worker keeps working while a test waits on one): the `temporal` CLI and `starter.py`."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from ecs_canary.names import WORKFLOW_TYPE
from tests.helpers.deployment_requests import request_file
from tests.helpers.processes import ROOT, TEMPORAL

# $USER of the starter processes: the default approver name it prints.
STARTER_USER = "tester"


@dataclass
class Done:
    """A finished command: exit code and output."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


async def temporal_cli(client: Client, *args: str) -> Done:
    """The real `temporal` CLI (the venv's), against the test's server."""
    address = client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        str(TEMPORAL),
        *args,
        "--address",
        address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return Done(process.returncode or 0, out.decode(), err.decode())


async def cli_start(
    client: Client,
    task_queue: str,
    workflow_id: str,
    *args: str,
    command: str = "start",
    workflow_type: str = WORKFLOW_TYPE,
) -> Done:
    """`temporal workflow start` (or `signal-with-start`, ...) of a deployment, as a platform
    engineer types it; `args` carry the input (`--input-file F` or `--input JSON`) and more."""
    return await temporal_cli(
        client,
        "workflow",
        command,
        "--task-queue",
        task_queue,
        "--type",
        workflow_type,
        "--workflow-id",
        workflow_id,
        *args,
    )


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
    """`python starter.py ...` with the environment of one test (its server, its Web UI's port
    and its task queue). A developer's TEMPORAL_UI_URL is left out: the links it prints go to
    `ui_port`, the way `make up` exports TEMPORAL_UI_PORT for the local stack."""

    def __init__(self, address: str, task_queue: str, tmp_path: Path, ui_port: int) -> None:
        self.env = {
            **os.environ,
            "TEMPORAL_ADDRESS": address,
            "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_TASK_QUEUE": task_queue,
            "TEMPORAL_UI_PORT": str(ui_port),
            "USER": STARTER_USER,
        }
        for name in ("TEMPORAL_PROFILE", "TEMPORAL_UI_URL"):
            self.env.pop(name, None)
        self.tmp_path = tmp_path
        self.procs: list[asyncio.subprocess.Process] = []

    async def spawn(self, *args: str, env: Mapping[str, str] | None = None) -> Running:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "starter.py",
            *args,
            cwd=ROOT,
            env=dict(env or self.env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.procs.append(proc)
        return Running(proc)

    async def run(self, *args: str, env: Mapping[str, str] | None = None) -> Done:
        return await (await self.spawn(*args, env=env)).finish()

    def request_file(self, request: Any, name: str = "request.json") -> str:
        return request_file(self.tmp_path, request, name)

    async def kill_all(self) -> None:
        """Kill the starter processes still running (a test that failed half-way)."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
