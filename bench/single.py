"""Measures 1 to 3, one deployment at a time: ecs-canary against the plain boto3 baseline at
each task start delay (wall time, ECS time, calls), and the history events of each path."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from bench import deployments as d
from bench.harness import GATE_MANUAL, GATE_TIMER, Bench


async def single_deployments(bench: Bench) -> None:
    """Measures 1 and 2: at each delay, `repeats` deployments of each variant, alternating
    which goes first, each on a service of its own."""
    cfg = bench.config
    task_queue = f"bench-single-{uuid.uuid4().hex[:6]}"
    worker = bench.worker("worker-single", task_queue)
    runs: list[dict[str, Any]] = []
    try:
        for delay in cfg.delays:
            for rep in range(cfg.repeats):
                order = ["ecs-canary", "baseline"] if rep % 2 == 0 else ["baseline", "ecs-canary"]
                for variant in order:
                    service = f"s{int(delay)}r{rep}{'p' if variant == 'ecs-canary' else 'b'}"
                    bench.seed_services([service], delay)
                    body = d.request(bench.seed, service, cfg.desired, cfg.poll, GATE_TIMER)
                    bench.admin.reset_calls()
                    if variant == "ecs-canary":
                        run = await d.run_ecs_canary(bench.client, task_queue, body)
                    else:
                        run = await asyncio.to_thread(d.run_baseline, bench.ecs, body, cfg.poll)
                    run.calls = bench.admin.calls()
                    if run.outcome != "succeeded" or run.task_definition_arn is None:
                        raise RuntimeError(f"{variant} deployment of {service}: {run.outcome}")
                    run.ecs_path = d.ecs_critical_path(
                        bench.ecs, bench.seed["cluster"], service, run.task_definition_arn
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
                        events = await d.fetch_history(bench.client, f"bench/{service}")
                        entry["history_events"] = len(events)
                        entry["history_types"] = d.event_type_counts(events)
                    runs.append(entry)
                    bench.say(
                        f"{variant:10} delay {delay:g}s: wall {run.wall:.2f}s "
                        f"(gate {run.gate_seconds:.2f}s) ECS {run.ecs_seconds:.2f}s "
                        f"ratio {run.overhead_ratio:.3f} calls {run.calls['total']}"
                    )
    finally:
        worker.stop()
    bench.results["single"] = runs


async def histories(bench: Bench) -> None:
    """Measure 3: the history of a happy, a rejected and a rolled-back deployment."""
    cfg = bench.config
    task_queue = f"bench-history-{uuid.uuid4().hex[:6]}"
    worker = bench.worker("worker-history", task_queue)
    paths: dict[str, Any] = {}
    try:
        for path, decide, fault in (
            ("happy path (approve signal)", "approve", None),
            ("reject (reject signal)", "reject", None),
            ("rollback (nopull on main, approve signal)", "approve", "nopull"),
        ):
            service = f"h{len(paths)}"
            bench.seed_services([service], cfg.history_delay)
            body = d.request(bench.seed, service, cfg.desired, cfg.poll, GATE_MANUAL)
            if fault:
                bench.admin.inject_fault(service, fault)
            run = await d.run_ecs_canary(bench.client, task_queue, body, decide=decide)
            events = await d.fetch_history(bench.client, f"bench/{service}")
            summary = d.activity_summary(events)
            paths[path] = {
                "outcome": run.outcome,
                "events": len(events),
                "types": d.event_type_counts(events),
                "activities": summary["by_type"],
                "markers": summary["markers"],
                "wall": run.wall,
            }
            bench.say(f"history {path}: {run.outcome}, {len(events)} events")
    finally:
        worker.stop()
    bench.results["history"] = paths
