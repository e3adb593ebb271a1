"""Real processes for durability tests: a worker that can be killed with SIGKILL, and a Temporal
dev server on a SQLite file that can be stopped and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ecs_canary import search_attributes

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn_worker(address: str, task_queue: str, log_path: Path) -> subprocess.Popen:
    """`python worker.py` as users run it, configured only through the environment."""
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_TASK_QUEUE": task_queue,
        "LOG_FORMAT": "json",
        "ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS": "1",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=log
        )


def kill_hard(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_hard(process)


class DevServer:
    """`temporal server start-dev` on a SQLite file, so runs survive a restart."""

    def __init__(self, db_file: Path, log_path: Path) -> None:
        self.db_file = db_file
        self.log_path = log_path
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        args = [
            str(BIN / "temporal"),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "error",
        ]
        for key in search_attributes.ALL:
            args += ["--search-attribute", f"{key.name}=Keyword"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log)
        await self._wait_healthy()

    async def _wait_healthy(self, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            probe = await asyncio.create_subprocess_exec(
                str(BIN / "temporal"),
                "operator",
                "cluster",
                "health",
                "--address",
                self.address,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            if await probe.wait() == 0:
                return
            assert self.process is not None and self.process.poll() is None, "server exited"
            await asyncio.sleep(0.2)
        raise AssertionError(f"Temporal dev server not healthy within {timeout}s")

    async def stop(self) -> None:
        """SIGTERM, then wait for the pid to exit: it holds the SQLite file until then."""
        if self.process is not None:
            await asyncio.to_thread(stop, self.process)
            self.process = None
