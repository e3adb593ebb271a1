"""The processes a benchmark runs: the ECS emulator and ecs-canary workers as subprocesses (so
their RSS and CPU are their own), the Temporal dev server, readings of /proc for a process, and
what the machine is (for the report)."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import IO

from temporalio.testing import WorkflowEnvironment

from ecs_canary import search_attributes
from ecs_canary.temporal import CLUSTER_SETTINGS, DATA_CONVERTER

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REGION = "us-east-1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The bench's dev server reads search attributes as a production server does: from its cache.
# `temporal server start-dev` turns `system.forceSearchAttributesCacheRefreshOnRead` on (so that
# an attribute created while it runs is seen at once), which makes every visibility write, every
# upsert and every describe read the cluster's metadata and the namespace from its one SQLite
# connection. A train of 1,000 made 46,000 such reads, about 40% of the time that connection
# was busy (docs/release-train-bench.md, "The dev server's search attribute reads"). Temporal's
# default, on every server but the dev server, is off; the bench registers its attributes when
# the server starts, so it never needs a fresh read.
DEV_SERVER_ARGS = ["--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false"]
# Settings a developer's environment might hold that must not reach the bench's processes.
_SCRUBBED = CLUSTER_SETTINGS | {"AWS_PROFILE", "AWS_SESSION_TOKEN"}


def aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(extra)
    return env


def _wait_for_line(
    process: subprocess.Popen[str], stream: IO[str], pattern: str, timeout: float, log: IO[str]
) -> re.Match[str]:
    """Read `stream` until a line matches; copy every line to `log` (also afterwards)."""
    found: list[re.Match[str]] = []
    ready = threading.Event()

    def pump() -> None:
        for line in stream:
            log.write(line)
            if not ready.is_set():
                match = re.search(pattern, line)
                if match:
                    found.append(match)
                    ready.set()
        log.flush()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(
                f"process {process.args!r} did not print {pattern!r}; see {log.name}"
            )
    return found[0]


@dataclass
class Managed:
    """A subprocess this bench started; stopped by its own pid only."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path
    url: str = ""
    rss_samples: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 15) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(10)


def start_emulator(
    log_dir: Path,
    task_start_seconds: float,
    task_stop_seconds: float,
    tick_seconds: float,
    task_run_seconds: float,
) -> Managed:
    """`python -m ecs_emulator` on a free port. `task_run_seconds` (standalone RunTask tasks
    only; the emulator fixes it at start) matters only to the verification steps measure.
    Without traffic: the emulator shares the cores with the worker being measured (a measure
    that needs traffic turns it on with `EmulatorAdmin.settings(traffic_rps=...)`)."""
    log_path = log_dir / "emulator.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "ecs_emulator",
            "--port",
            "0",
            "--task-start-seconds",
            str(task_start_seconds),
            "--task-stop-seconds",
            str(task_stop_seconds),
            "--tick-seconds",
            str(tick_seconds),
            "--task-run-seconds",
            str(task_run_seconds),
            "--traffic-rps",
            "0",
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    match = _wait_for_line(process, process.stdout, r"ready on (http://\S+)", 60, log)
    return Managed("emulator", process, log_path, url=match.group(1))


def start_worker(
    log_dir: Path,
    name: str,
    temporal_address: str,
    task_queue: str,
    endpoint: str,
    ecs_calls_per_second: float,
    shared: bool = False,
    settings: dict[str, str] | None = None,
) -> Managed:
    """`python worker.py` with only the bench's settings in its environment; `shared`: the
    budget is the one all workers on the task queue share; `settings`: more variables (e.g.
    ECS_CANARY_PAYLOAD_KEY_FILE)."""
    log_path = log_dir / f"{name}.log"
    log = log_path.open("w", buffering=1)  # line by line: the bench reads the shares from it
    env = clean_env(
        TEMPORAL_ADDRESS=temporal_address,
        TEMPORAL_NAMESPACE="default",
        TEMPORAL_TASK_QUEUE=task_queue,
        ECS_CANARY_ECS_CALLS_PER_SECOND=str(ecs_calls_per_second),
        **({"ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND": str(ecs_calls_per_second)} if shared else {}),
        ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS="2",
        PYTHONUNBUFFERED="1",
        **aws_env(endpoint),
        **(settings or {}),
    )
    process = subprocess.Popen(
        [PYTHON, "worker.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    _wait_for_line(process, process.stdout, r"Worker started", 60, log)
    return Managed(name, process, log_path)


def free_port() -> int:
    """A port nothing listens on now, on loopback (the dev server's /metrics)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def dev_server(*settings: str) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """A Temporal dev server of its own (`.venv/bin/temporal`, in memory) with the product's
    search attributes, started with `settings` (the bench's: DEV_SERVER_ARGS), serving its
    Prometheus metrics on a free loopback port (bench.server_metrics); the environment and the
    metrics' URL. Stopped on the way out."""
    metrics_port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(PYTHON).parent / "temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=search_attributes.ALL,
        dev_server_log_level="error",
        # Slower than the SDK's 5 s when it starts beside other work (a test run's workers).
        dev_server_startup_timeout=timedelta(seconds=60),
        dev_server_extra_args=["--metrics-port", str(metrics_port), *settings],
    )
    try:
        yield env, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        await env.shutdown()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def idle_cpu_seconds() -> float:
    """How long the machine's cores have been idle since it started, summed over the cores
    (/proc/stat: idle and waiting for I/O)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / _CLOCK_TICKS


def fixed_work_seconds() -> float:
    """CPU seconds this process takes for one fixed piece of work (hashing, then arithmetic),
    the fastest of three: the same code measured on a host that is slower today takes more
    CPU for the same work, and this says by how much."""

    def once() -> float:
        began = time.process_time()
        digest = b"ecs-canary"
        for _ in range(300_000):
            digest = hashlib.sha256(digest).digest()
        sum(number * number for number in range(2_000_000))
        return time.process_time() - began

    return min(once() for _ in range(3))


def dev_server_pid() -> int | None:
    """The Temporal dev server this process started (`temporal server start-dev`), if any."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if parent == me and b"start-dev" in command:
            return int(stat.parent.name)
    return None


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak RSS since start) in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class RssSampler:
    """Samples a process's VmRSS every `every` seconds in a thread (VmHWM gives the peak too)."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid, self.every = pid, every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.samples.append(memory_kib(self.pid)["VmRSS"])
            except (FileNotFoundError, KeyError, ProcessLookupError):
                return


def machine() -> list[tuple[str, str]]:
    """What the report says the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    logical = sum(1 for line in cpuinfo if line.startswith("processor"))
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal"))
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "?"
    return [
        ("CPU", f"{models[0] if models else platform.processor() or '?'}"),
        ("Cores", f"{logical} logical (os.cpu_count() {os.cpu_count()})"),
        ("Memory", f"{total_kib / 1024 / 1024:.1f} GiB"),
        ("OS", platform.platform()),
        ("Python", platform.python_version()),
        ("temporalio", metadata.version("temporalio")),
        ("moto", metadata.version("moto")),
        ("boto3", metadata.version("boto3")),
        ("Commit measured", commit or "?"),
    ]
