"""What every measure of `make bench` runs on: its settings (`Config`, from the BENCH_*
environment) and one bench (`Bench`): the ECS emulator and a Temporal dev server for the run,
with the clients, seeding and workers a measure needs (`open_bench`).

A measure (`single`, `concurrency`, `steps`) is a module of functions that take a `Bench`;
`bench.run` picks the measures and `bench.report` writes their sections. Nothing here imports a
measure, so no measure needs `bench.run`, and one can also run alone (`python -m bench.steps`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from temporalio.client import Client

from bench import deployments as d
from bench.stack import (
    DEV_SERVER_ARGS,
    REGION,
    Managed,
    aws_env,
    dev_server,
    start_emulator,
    start_worker,
)
from ecs_emulator import EmulatorAdmin

# The gates of the measures' requests: approved by its timer at once, or held for a signal.
GATE_TIMER = {"timeout_seconds": 0.05, "on_timeout": "approve"}
GATE_MANUAL = {"timeout_seconds": 600}


def _counts(variable: str, default: str) -> list[int]:
    """A comma-separated list of deployment counts, e.g. "1,100"."""
    return [int(n) for n in os.environ.get(variable, default).split(",")]


@dataclass
class Config:
    quick: bool
    poll: float
    budget: float
    repeats: int
    delays: list[float]
    concurrency: list[int]
    concurrency_delay: float
    concurrency_rounds: int
    kill_deployments: int
    profile_concurrency: list[int]
    shared_count: int = 300
    shared_workers: int = 3
    history_delay: float = 1.0
    task_stop_seconds: float = 1.0
    # How long the emulator's standalone (RunTask) tasks run: the steps measure's test task.
    task_run_seconds: float = 5.0
    tick_seconds: float = 0.1
    desired: int = 2
    seeding_start_seconds: float = 0.2

    @classmethod
    def from_env(cls) -> Config:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        return cls(
            quick=quick,
            poll=float(os.environ.get("BENCH_POLL_SECONDS", "0.25")),
            budget=float(os.environ.get("BENCH_ECS_CALLS_PER_SECOND", "100")),
            repeats=int(os.environ.get("BENCH_REPEATS", "2" if quick else "3")),
            delays=[1.0] if quick else [1.0, 5.0],
            concurrency=_counts("BENCH_CONCURRENCY", "1,10" if quick else "1,10,50,100,300"),
            concurrency_delay=float(
                os.environ.get("BENCH_CONCURRENCY_DELAY", "1" if quick else "5")
            ),
            concurrency_rounds=int(
                os.environ.get("BENCH_CONCURRENCY_ROUNDS", "1" if quick else "3")
            ),
            kill_deployments=0 if quick else 50,
            shared_count=30 if quick else 300,
            profile_concurrency=_counts("BENCH_PROFILE_CONCURRENCY", "10" if quick else "100,300"),
        )


@dataclass
class Bench:
    config: Config
    log_dir: Path
    emulator: Managed
    admin: EmulatorAdmin
    seed: dict[str, Any]
    client: Client
    temporal_address: str
    ecs: Any
    # The dev server's Prometheus endpoint (bench.server_metrics).
    server_metrics_url: str
    results: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def worker(
        self,
        name: str,
        task_queue: str,
        shared: bool = False,
        settings: dict[str, str] | None = None,
    ) -> Managed:
        return start_worker(
            self.log_dir,
            name,
            self.temporal_address,
            task_queue,
            self.emulator.url,
            self.config.budget,
            shared,
            settings,
        )

    def seed_services(self, services: list[str], delay: float) -> None:
        self.admin.settings(task_start_seconds=self.config.seeding_start_seconds)
        d.seed_services(self.ecs, self.seed, services, self.config.desired)
        self.admin.settings(task_start_seconds=delay)


@asynccontextmanager
async def open_bench(cfg: Config) -> AsyncIterator[Bench]:
    """The emulator and a Temporal dev server for one run, torn down afterwards; shared by
    `make bench` and `python -m bench.steps` so a measure runs the same way alone."""
    log_dir = Path(tempfile.mkdtemp(prefix="ecs-canary-bench-"))
    print(f"[bench] logs and raw results in {log_dir}", flush=True)
    emulator = start_emulator(
        log_dir, cfg.delays[0], cfg.task_stop_seconds, cfg.tick_seconds, cfg.task_run_seconds
    )
    try:
        os.environ.update(aws_env(emulator.url))
        admin = EmulatorAdmin(emulator.url)
        seed = admin.reset()
        async with dev_server(*DEV_SERVER_ARGS) as (env, metrics_url):
            yield Bench(
                config=cfg,
                log_dir=log_dir,
                emulator=emulator,
                admin=admin,
                seed=seed,
                client=env.client,
                temporal_address=env.client.service_client.config.target_host,
                ecs=boto3.client("ecs", region_name=REGION),
                server_metrics_url=metrics_url,
            )
    finally:
        emulator.stop()
