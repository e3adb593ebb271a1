"""Measure 4, concurrent deployments: on one worker (each count by its median round), on
workers sharing one ECS budget, under py-spy (`load.py` reads the profiles and the shares), and
the kill test: two workers sharing the deployments, one of them killed with SIGKILL midway."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from bench import deployments as d
from bench import load
from bench.harness import GATE_TIMER, Bench
from bench.stack import Managed, RssSampler, cpu_seconds, memory_kib


async def concurrent(
    bench: Bench,
    count: int,
    workers: int = 1,
    kill_after: float | None = None,
    profile_to: Path | None = None,
    shared: bool = False,
) -> dict[str, Any]:
    cfg = bench.config
    delay = cfg.concurrency_delay
    bench.seed = bench.admin.reset()
    services = [f"c{count}x{i:03d}" for i in range(count)]
    bench.seed_services(services, delay)
    task_queue = f"bench-c{count}-{uuid.uuid4().hex[:6]}"
    running: list[Managed] = []
    recording = None
    try:  # every worker started is stopped, whatever fails
        for i in range(workers):
            running.append(bench.worker(f"worker-c{count}-{i}", task_queue, shared))
        main = running[0]
        # Shared: no worker makes an ECS call before it has its share (shared_budget.py).
        await (load.shares_settled(running, workers) if shared else asyncio.sleep(1.0))
        # CPU of the workers that live to the end (the kill test's victim is not one).
        measured = running[:-1] if kill_after is not None else running
        cpu_before = sum(cpu_seconds(w.pid) for w in measured)
        emulator_cpu_before = cpu_seconds(bench.emulator.pid)
        bench.admin.reset_calls()
        bodies = [d.request(bench.seed, s, cfg.desired, cfg.poll, GATE_TIMER) for s in services]
        killed_at = None
        recording = load.Recording(main.pid, profile_to) if profile_to else None
        with RssSampler(main.pid) as sampler:
            began = time.time()
            jobs = [
                asyncio.ensure_future(d.run_ecs_canary(bench.client, task_queue, body))
                for body in bodies
            ]
            if kill_after is not None:
                await asyncio.sleep(kill_after)
                victim = running[-1]
                victim.kill9()
                killed_at = time.time() - began
                bench.say(f"kill -9 {victim.name} (pid {victim.pid}) at {killed_at:.1f}s")
            runs = await asyncio.wait_for(asyncio.gather(*jobs), timeout=900)
            total = time.time() - began
            calls = bench.admin.calls()
            cpu_after = sum(cpu_seconds(w.pid) for w in measured)
            emulator_cpu = cpu_seconds(bench.emulator.pid) - emulator_cpu_before
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
                bench.ecs,
                bench.seed["cluster"],
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
        events = await d.fetch_history(bench.client, f"bench/{run.service}")
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
    bench.say(
        f"{count} concurrent x{workers} workers: {result['succeeded']}/{count} ok, "
        f"p50 {result['p50']:.2f}s p95 {result['p95']:.2f}s, RSS {result['peak_rss_mib']:.0f} "
        f"MiB, CPU {result['cpu_seconds']:.1f}s, max {calls['max_per_second']}/s, "
        f"DescribeServices {describes} (waits {result['wait_describes']} vs polls {polls})"
    )
    return result


async def concurrency(bench: Bench) -> None:
    """Every N once per round, rounds one after another, so that a slow spell of the shared
    machine hits one round rather than one N; each N is reported by its median round."""
    rounds = [
        [await concurrent(bench, n) for n in bench.config.concurrency]
        for _ in range(bench.config.concurrency_rounds)
    ]
    bench.results["concurrency_rounds"] = rounds
    bench.results["concurrency"] = [
        sorted(runs, key=lambda r: r["p95"])[len(runs) // 2] for runs in zip(*rounds, strict=True)
    ]


async def profiles(bench: Bench) -> None:
    """The worker under py-spy at each profiled N: one run each, apart from the timed rounds
    (sampling takes some of the machine's CPU)."""
    if not load.available():
        bench.say("py-spy not installed: no profile")
        return
    bench.results["profiles"] = [
        await concurrent(bench, n, profile_to=bench.log_dir / f"profile-{n}.txt")
        for n in bench.config.profile_concurrency
    ]


async def shared_budget(bench: Bench) -> None:
    """N deployments spread over several workers that share the one budget."""
    cfg = bench.config
    bench.results["shared"] = await concurrent(
        bench, cfg.shared_count, workers=cfg.shared_workers, shared=True
    )


async def kill_test(bench: Bench) -> None:
    """The deployments on two workers, one killed (SIGKILL) halfway through a lone one's time."""
    cfg = bench.config
    if not cfg.kill_deployments:
        return
    lone = next((r for r in bench.results.get("concurrency", []) if r["count"] == 1), None)
    kill_after = max(2.0, (lone["p50"] if lone else 4 * cfg.concurrency_delay) / 2)
    bench.results["kill"] = await concurrent(
        bench, cfg.kill_deployments, workers=2, kill_after=kill_after
    )
