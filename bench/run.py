"""`make bench`: every measure side by side in one run, written to BENCHMARKS.md.

    .venv/bin/python -m bench.run                 # full run
    BENCH_QUICK=1 .venv/bin/python -m bench.run   # 1 s delay, 1 and 10 concurrent, no kill test
    .venv/bin/python -m bench.steps               # the verification steps measure alone

Environment: BENCH_QUICK, BENCH_OUTPUT (default BENCHMARKS.md), BENCH_ECS_CALLS_PER_SECOND
(the worker's ECS_CANARY_ECS_CALLS_PER_SECOND, default 100), BENCH_POLL_SECONDS (0.25),
BENCH_REPEATS (single-deployment repeats per variant and delay), BENCH_CONCURRENCY_ROUNDS
(rounds of the concurrency measure; 3, or 1 in quick mode); for iterating only:
BENCH_CONCURRENCY (e.g. "1,100"), BENCH_CONCURRENCY_DELAY, BENCH_PROFILE_CONCURRENCY (the Ns
profiled with py-spy, "100,300"), BENCH_MEASURES (single,history,concurrency,shared,profile,
kill,steps,analysis,
cancellation).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench import analysis, analysis_e2e, cancellation, load, report, steps
from bench import deployments as d
from bench.stack import (
    REGION,
    ROOT,
    Managed,
    RssSampler,
    aws_env,
    cpu_seconds,
    memory_kib,
    start_emulator,
    start_worker,
)
from ecs_canary import search_attributes
from ecs_canary.temporal import DATA_CONVERTER
from ecs_emulator import EmulatorAdmin

GATE_TIMER = {"timeout_seconds": 0.05, "on_timeout": "approve"}
GATE_MANUAL = {"timeout_seconds": 600}
ALL_MEASURES = "single,history,concurrency,shared,profile,kill,steps,analysis,cancellation"


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
    results: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)

    def worker(self, name: str, task_queue: str, shared: bool = False) -> Managed:
        return start_worker(
            self.log_dir,
            name,
            self.temporal_address,
            task_queue,
            self.emulator.url,
            self.config.budget,
            shared,
        )

    def seed_services(self, services: list[str], delay: float) -> None:
        self.admin.settings(task_start_seconds=self.config.seeding_start_seconds)
        d.seed_services(self.ecs, self.seed, services, self.config.desired)
        self.admin.settings(task_start_seconds=delay)

    # --- Measures 1 and 2: one deployment at a time, ecs-canary vs baseline -------------------

    async def single_deployments(self) -> None:
        cfg = self.config
        task_queue = f"bench-single-{uuid.uuid4().hex[:6]}"
        worker = self.worker("worker-single", task_queue)
        runs: list[dict[str, Any]] = []
        try:
            for delay in cfg.delays:
                for rep in range(cfg.repeats):
                    order = (
                        ["ecs-canary", "baseline"] if rep % 2 == 0 else ["baseline", "ecs-canary"]
                    )
                    for variant in order:
                        service = f"s{int(delay)}r{rep}{'p' if variant == 'ecs-canary' else 'b'}"
                        self.seed_services([service], delay)
                        body = d.request(self.seed, service, cfg.desired, cfg.poll, GATE_TIMER)
                        self.admin.reset_calls()
                        if variant == "ecs-canary":
                            run = await d.run_ecs_canary(self.client, task_queue, body)
                        else:
                            run = await asyncio.to_thread(d.run_baseline, self.ecs, body, cfg.poll)
                        run.calls = self.admin.calls()
                        if run.outcome != "succeeded" or run.task_definition_arn is None:
                            raise RuntimeError(f"{variant} deployment of {service}: {run.outcome}")
                        run.ecs_path = d.ecs_critical_path(
                            self.ecs, self.seed["cluster"], service, run.task_definition_arn
                        )
                        entry = {
                            "variant": variant,
                            "delay": delay,
                            "service": service,
                            "wall": run.wall,
                            "gate": run.gate_seconds,
                            "wall_without_gate": run.wall_without_gate,
                            "ecs_path": run.ecs_path,
                            "ecs_seconds": run.ecs_seconds,
                            "ratio": run.overhead_ratio,
                            "calls": run.calls,
                            "stages": run.stages,
                        }
                        if variant == "ecs-canary":
                            events = await d.fetch_history(self.client, f"bench/{service}")
                            entry["history_events"] = len(events)
                            entry["history_types"] = d.event_type_counts(events)
                        runs.append(entry)
                        self.say(
                            f"{variant:10} delay {delay:g}s: wall {run.wall:.2f}s "
                            f"(gate {run.gate_seconds:.2f}s) ECS {run.ecs_seconds:.2f}s "
                            f"ratio {run.overhead_ratio:.3f} calls {run.calls['total']}"
                        )
        finally:
            worker.stop()
        self.results["single"] = runs

    # --- Measure 3: history events per path ------------------------------------------------

    async def histories(self) -> None:
        cfg = self.config
        task_queue = f"bench-history-{uuid.uuid4().hex[:6]}"
        worker = self.worker("worker-history", task_queue)
        paths: dict[str, Any] = {}
        try:
            for path, decide, fault in (
                ("happy path (approve signal)", "approve", None),
                ("reject (reject signal)", "reject", None),
                ("rollback (nopull on main, approve signal)", "approve", "nopull"),
            ):
                service = f"h{len(paths)}"
                self.seed_services([service], cfg.history_delay)
                body = d.request(self.seed, service, cfg.desired, cfg.poll, GATE_MANUAL)
                if fault:
                    self.admin.inject_fault(service, fault)
                run = await d.run_ecs_canary(self.client, task_queue, body, decide=decide)
                events = await d.fetch_history(self.client, f"bench/{service}")
                summary = d.activity_summary(events)
                paths[path] = {
                    "outcome": run.outcome,
                    "events": len(events),
                    "types": d.event_type_counts(events),
                    "activities": summary["by_type"],
                    "markers": summary["markers"],
                    "wall": run.wall,
                }
                self.say(f"history {path}: {run.outcome}, {len(events)} events")
        finally:
            worker.stop()
        self.results["history"] = paths

    # --- Measure 4: concurrent deployments on one worker ------------------------------------

    async def concurrent(
        self,
        count: int,
        workers: int = 1,
        kill_after: float | None = None,
        profile_to: Path | None = None,
        shared: bool = False,
    ) -> dict[str, Any]:
        cfg = self.config
        delay = cfg.concurrency_delay
        self.seed = self.admin.reset()
        services = [f"c{count}x{i:03d}" for i in range(count)]
        self.seed_services(services, delay)
        task_queue = f"bench-c{count}-{uuid.uuid4().hex[:6]}"
        running: list[Managed] = []
        recording = None
        try:  # every worker started is stopped, whatever fails
            for i in range(workers):
                running.append(self.worker(f"worker-c{count}-{i}", task_queue, shared))
            main = running[0]
            # Shared: no worker makes an ECS call before it has its share (shared_budget.py).
            await (load.shares_settled(running, workers) if shared else asyncio.sleep(1.0))
            # CPU of the workers that live to the end (the kill test's victim is not one).
            measured = running[:-1] if kill_after is not None else running
            cpu_before = sum(cpu_seconds(w.pid) for w in measured)
            emulator_cpu_before = cpu_seconds(self.emulator.pid)
            self.admin.reset_calls()
            bodies = [d.request(self.seed, s, cfg.desired, cfg.poll, GATE_TIMER) for s in services]
            killed_at = None
            recording = load.Recording(main.pid, profile_to) if profile_to else None
            with RssSampler(main.pid) as sampler:
                began = time.time()
                jobs = [
                    asyncio.ensure_future(d.run_ecs_canary(self.client, task_queue, body))
                    for body in bodies
                ]
                if kill_after is not None:
                    await asyncio.sleep(kill_after)
                    victim = running[-1]
                    victim.kill9()
                    killed_at = time.time() - began
                    self.say(f"kill -9 {victim.name} (pid {victim.pid}) at {killed_at:.1f}s")
                runs = await asyncio.wait_for(asyncio.gather(*jobs), timeout=900)
                total = time.time() - began
                calls = self.admin.calls()
                cpu_after = sum(cpu_seconds(w.pid) for w in measured)
                emulator_cpu = cpu_seconds(self.emulator.pid) - emulator_cpu_before
                memory = memory_kib(main.pid)
        finally:
            profile = recording.stop() if recording else None
            for worker in running:
                worker.stop()
        failures = {}
        for run in runs:
            problem = None
            if run.outcome != "succeeded":
                problem = f"outcome {run.outcome}"
            else:
                problem = d.verify_deployed(
                    self.ecs,
                    self.seed["cluster"],
                    run.service,
                    run.task_definition_arn,
                    cfg.desired,
                )
            if problem:
                failures[run.service] = problem
        polls = 0
        retried = heartbeat_timeouts = 0
        history_lengths = []
        types_total: dict[str, int] = {}
        for run in runs:
            events = await d.fetch_history(self.client, f"bench/{run.service}")
            summary = d.activity_summary(events)
            polls += d.estimated_polls(summary["waits"], cfg.poll)
            retried += summary["retried_attempts"]
            heartbeat_timeouts += summary["heartbeat_timeouts"]
            history_lengths.append(len(events))
            for name, n in d.event_type_counts(events).items():
                types_total[name] = types_total.get(name, 0) + n
        walls = [r.wall for r in runs]
        describes = calls["by_operation"].get("DescribeServices", 0)
        result = {
            "count": count,
            "workers": workers,
            "shared": shared,
            "delay": delay,
            "succeeded": count - len(failures),
            "failures": failures,
            "p50": d.percentile(walls, 50),
            "p95": d.percentile(walls, 95),
            "max": max(walls),
            "total_seconds": total,
            "peak_rss_mib": memory["VmHWM"] / 1024,
            "sampled_peak_rss_mib": max(sampler.samples, default=0) / 1024,
            "cpu_seconds": cpu_after - cpu_before,
            "calls": calls,
            "calls_per_deployment": calls["total"] / count,
            "describe_services": describes,
            "wait_describes": describes,
            "estimated_polls": polls + d.NON_WAIT_DESCRIBES * count,
            "retried_activity_attempts": retried,
            "heartbeat_timeouts": heartbeat_timeouts,
            "workflow_task_timeouts": types_total.get("WORKFLOW_TASK_TIMED_OUT", 0),
            "activity_timeouts": types_total.get("ACTIVITY_TASK_TIMED_OUT", 0),
            "history_events_max": max(history_lengths),
            "killed_at": killed_at,
            "emulator_cpu_seconds": emulator_cpu,
            "profile": None
            if profile is None
            else {
                "samples": profile.samples,
                "own": profile.top("own", 25),
                "total": profile.top("total", 40),
            },
            "stages": {
                stage: {
                    "p50": d.percentile([r.stages.get(stage, 0) for r in runs], 50),
                    "p95": d.percentile([r.stages.get(stage, 0) for r in runs], 95),
                }
                for stage in ("canary_deploy", "verification", "canary_delete", "rolling_deploy")
            },
        }
        self.say(
            f"{count} concurrent x{workers} workers: {result['succeeded']}/{count} ok, "
            f"p50 {result['p50']:.2f}s p95 {result['p95']:.2f}s, RSS {result['peak_rss_mib']:.0f} "
            f"MiB, CPU {result['cpu_seconds']:.1f}s, max {calls['max_per_second']}/s, "
            f"DescribeServices {describes} (waits {result['wait_describes']} vs polls {polls})"
        )
        return result

    async def concurrency(self) -> None:
        """Every N once per round, rounds one after another, so that a slow spell of the shared
        machine hits one round rather than one N; each N is reported by its median round."""
        rounds = [
            [await self.concurrent(n) for n in self.config.concurrency]
            for _ in range(self.config.concurrency_rounds)
        ]
        self.results["concurrency_rounds"] = rounds
        self.results["concurrency"] = [
            sorted(runs, key=lambda r: r["p95"])[len(runs) // 2]
            for runs in zip(*rounds, strict=True)
        ]

    async def kill_test(self) -> None:
        cfg = self.config
        if not cfg.kill_deployments:
            return
        lone = next((r for r in self.results.get("concurrency", []) if r["count"] == 1), None)
        kill_after = max(2.0, (lone["p50"] if lone else 4 * cfg.concurrency_delay) / 2)
        self.results["kill"] = await self.concurrent(
            cfg.kill_deployments, workers=2, kill_after=kill_after
        )


@asynccontextmanager
async def open_bench(cfg: Config) -> AsyncIterator[Bench]:
    """The emulator and a Temporal dev server for one run, torn down afterwards; shared by
    `make bench` and `python -m bench.steps` so a measure runs the same way alone."""
    log_dir = Path(tempfile.mkdtemp(prefix="ecs-canary-bench-"))
    print(f"[bench] logs and raw results in {log_dir}", flush=True)
    emulator = start_emulator(
        log_dir, cfg.delays[0], cfg.task_stop_seconds, cfg.tick_seconds, cfg.task_run_seconds
    )
    env = None
    try:
        os.environ.update(aws_env(emulator.url))
        admin = EmulatorAdmin(emulator.url)
        seed = admin.reset()
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
            data_converter=DATA_CONVERTER,
            search_attributes=search_attributes.ALL,
            dev_server_log_level="error",
        )
        yield Bench(
            config=cfg,
            log_dir=log_dir,
            emulator=emulator,
            admin=admin,
            seed=seed,
            client=env.client,
            temporal_address=env.client.service_client.config.target_host,
            ecs=boto3.client("ecs", region_name=REGION),
        )
    finally:
        if env is not None:
            await env.shutdown()
        emulator.stop()


async def main() -> int:
    cfg = Config.from_env()
    output = Path(os.environ.get("BENCH_OUTPUT", ROOT / "BENCHMARKS.md"))
    command = "BENCH_QUICK=1 make bench" if cfg.quick else "make bench"
    began = time.time()
    async with open_bench(cfg) as bench:
        measures = os.environ.get("BENCH_MEASURES", ALL_MEASURES).split(",")
        if "single" in measures:
            await bench.single_deployments()
        if "history" in measures:
            await bench.histories()
        if "concurrency" in measures:
            await bench.concurrency()
        if "shared" in measures:
            await load.shared_budget(bench)
        if "profile" in measures:
            await load.profiles(bench)
        if "kill" in measures:
            await bench.kill_test()
        if "steps" in measures:
            bench.results["steps"] = await steps.measure(bench)
        if "analysis" in measures:
            bench.results["analysis"] = analysis.measure()
            bench.results["analysis_e2e"] = await analysis_e2e.measure(bench)
        if "cancellation" in measures:
            bench.results["cancellation"] = await cancellation.measure(bench)
        bench.results["elapsed_seconds"] = time.time() - began
        (bench.log_dir / "results.json").write_text(
            json.dumps(bench.results, indent=2, default=str)
        )
        output.write_text(report.render(cfg, bench.results, command))
        print(f"[bench] wrote {output} in {time.time() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
