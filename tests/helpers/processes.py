"""Real processes: free ports, stopping a child politely or with SIGKILL, a Temporal dev server
on a SQLite file that can be stopped and started again, and Temporal's time-skipping server."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from ecs_canary import search_attributes
from ecs_canary.temporal import DATA_CONVERTER
from tests.helpers.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPORAL = BIN / "temporal"
# How long a Temporal server may take to start: the SDK's 5 s is too short on a machine busy
# with the other test workers (pytest-xdist), which start theirs at the same moment.
SERVER_START_TIMEOUT = timedelta(seconds=60)
# Ports handed out lie below the kernel's ephemeral range, from which outgoing connections take
# their local ports. A port handed out and bound later (a local stack that a test restarts)
# stayed free meanwhile, and one from the ephemeral range became some client's local port in a
# full run: the restarted worker stopped with "Address already in use".
PORTS_HANDED_OUT = 12000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports nothing is bound to right now, drawn at random from the
    PORTS_HANDED_OUT ports below the ephemeral range (two xdist workers rarely draw the same)."""
    top = _ephemeral_start()
    lowest = max(1024, top - PORTS_HANDED_OUT)
    draw = random.SystemRandom()
    chosen: list[int] = []
    while len(chosen) < count:
        port = draw.randrange(lowest, top)
        if port not in chosen and _bindable(port):
            chosen.append(port)
    return chosen


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: IANA's dynamic ports start here
        return 49152


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    return free_ports(1)[0]


async def start_time_skipping() -> WorkflowEnvironment:
    """A time-skipping test server of its own (the installed binary, no download)."""
    return await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(BIN / "temporal-test-server"),
        data_converter=DATA_CONVERTER,
        test_server_startup_timeout=SERVER_START_TIMEOUT,
    )


def kill_hard(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM and wait; SIGKILL if it has not exited within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_hard(process)


async def run_quietly(*args: str) -> int:
    """Run a command with its output discarded; its exit code."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await process.wait()


class DevServer:
    """`temporal server start-dev` on a SQLite file, so runs survive a restart (and a test can
    read what the server stored); headless unless given a Web UI port."""

    def __init__(
        self,
        db_file: Path,
        log_path: Path,
        ui_port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.db_file = db_file
        self.log_path = log_path
        self.ui_port = ui_port
        self.extra_args = list(extra_args)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        args = [str(TEMPORAL), "server", "start-dev", "--ip", "127.0.0.1"]
        args += ["--headless"] if self.ui_port is None else ["--ui-port", str(self.ui_port)]
        args += ["--port", str(self.port), "--db-filename", str(self.db_file)]
        args += ["--log-level", "error", *self.extra_args]
        for key in search_attributes.ALL:
            args += ["--search-attribute", f"{key.name}=Keyword"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log)
        await self._wait_healthy()

    async def _wait_healthy(self, timeout: float = SERVER_START_TIMEOUT.total_seconds()) -> None:
        async def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, "server exited"
            health = ("operator", "cluster", "health", "--address", self.address)
            return await run_quietly(str(TEMPORAL), *health) == 0

        await wait_until(healthy, timeout=timeout, every=0.2)

    async def stop(self) -> None:
        """SIGTERM, then wait for the pid to exit: it holds the SQLite file until then."""
        if self.process is not None:
            await asyncio.to_thread(stop, self.process)
            self.process = None
