"""Canary analysis end to end on the emulator: how long a 3-interval analysis of 10-second
intervals at 1-second periods takes once both services are steady (target: 1.1 x 30 s).

One deployment per run, `require_approval: false`, so the canary is approved the moment the
last interval is judged and nobody's reaction time is in the numbers. `myapp` has no load
balancer: the emulator sends `TRAFFIC_RPS` requests a second to each service's RUNNING tasks
(the canary's and the baseline's included) and writes their `ECS/Emulator` and
`ECS/ContainerInsights` metrics every second, which the judge reads with GetMetricData.

The time measured is the Verification stage in the run's result: it begins once the canary
and the baseline are steady (Canary Deploy waits for both) and ends when `require_approval:
false` approves, right after the last interval's judgement. So it holds the three interval
timers (the intervals tile time: each starts where the one before ended, its judgement runs
during the next) and the last judgement's activity: one GetMetricData request and the judge.

    .venv/bin/python -m bench.analysis_e2e    # this measure alone (BENCH_REPEATS applies)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import uuid
from typing import Any

from bench import deployments as d
from bench.harness import Bench, Config, open_bench

INTERVAL_SECONDS = 10
INTERVALS = 3
PERIOD_SECONDS = 1
TARGET_FACTOR = 1.1
TRAFFIC_RPS = 50
TASK_START_SECONDS = 1.0
# Of the 10 periods an interval has, the last may be written after the interval is read.
MIN_DATA_POINTS = 8


def service_metric(
    name: str, namespace: str, metric_name: str, stat: str = "Average", **extra: Any
) -> dict[str, Any]:
    """An analysis metric per service (`{cluster}`, `{service}`), as a request names it."""
    dimensions = {"ClusterName": "{cluster}", "ServiceName": "{service}"}
    return {
        "name": name,
        "namespace": namespace,
        "metric_name": metric_name,
        "dimensions": dimensions,
        "stat": stat,
        **extra,
    }


def verification() -> dict[str, Any]:
    """The request's `verification`: the analysis alone, approved once it passed."""
    return {
        "require_approval": False,
        "analysis": {
            "interval_seconds": INTERVAL_SECONDS,
            "intervals": INTERVALS,
            "period_seconds": PERIOD_SECONDS,
            "min_data_points": MIN_DATA_POINTS,
            "metrics": [
                service_metric("errors", "ECS/Emulator", "Errors", "Sum", critical=True),
                service_metric("p99-latency", "ECS/Emulator", "Latency", "p99"),
                service_metric("cpu", "ECS/ContainerInsights", "CpuUtilized", "Average"),
            ],
        },
    }


async def measure(bench: Bench) -> dict[str, Any]:
    """`Config.repeats` deployments on a fresh emulator account with traffic on."""
    cfg = bench.config
    bench.seed = bench.admin.reset()
    task_queue = f"bench-analysis-{uuid.uuid4().hex[:6]}"
    worker = bench.worker("worker-analysis", task_queue)
    before = bench.admin.info()["settings"]["traffic_rps"]
    bench.admin.settings(traffic_rps=TRAFFIC_RPS)
    try:
        runs = [await _one_run(bench, task_queue, f"analysis{rep}") for rep in range(cfg.repeats)]
    finally:
        bench.admin.settings(traffic_rps=before)
        worker.stop()
    return {
        "interval_seconds": INTERVAL_SECONDS,
        "intervals": INTERVALS,
        "period_seconds": PERIOD_SECONDS,
        "traffic_rps": TRAFFIC_RPS,
        "runs": runs,
    }


async def _one_run(bench: Bench, task_queue: str, service: str) -> dict[str, Any]:
    cfg = bench.config
    bench.seed_services([service], TASK_START_SECONDS)
    body = d.request(bench.seed, service, cfg.desired, cfg.poll, verification())
    run = await d.run_ecs_canary(bench.client, task_queue, body)
    if run.outcome != "succeeded" or run.result is None:
        reason = run.result.reason if run.result is not None else "no result"
        raise RuntimeError(f"analysis deployment of {service}: {run.outcome} ({reason})")
    seconds = run.stages["verification"]
    bench.say(f"analysis {service}: {seconds:.2f} s from both steady to approved")
    return {"service": service, "verification_seconds": seconds, "wall": run.wall}


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The target row (name, measured, met), judged on the median run like the others."""
    data = results.get("analysis_e2e")
    if not data or not data["runs"]:
        return []
    planned = data["interval_seconds"] * data["intervals"]
    median = statistics.median(run["verification_seconds"] for run in data["runs"])
    return [
        (
            f"Canary analysis end to end, {data['intervals']} x {data['interval_seconds']} s "
            f"intervals at {data['period_seconds']} s periods: ends within {TARGET_FACTOR:g} x "
            f"{planned} s of both services steady (median)",
            f"{median:.2f} s",
            median <= TARGET_FACTOR * planned,
        )
    ]


def section(results: dict[str, Any]) -> list[str]:
    """The end-to-end part of BENCHMARKS.md's canary analysis section (nothing when the measure
    did not run)."""
    data = results.get("analysis_e2e")
    if not data or not data["runs"]:
        return []
    times = ", ".join(f"{run['verification_seconds']:.2f} s" for run in data["runs"])
    return [
        "### End to end on the emulator\n",
        f"One deployment per run ({len(data['runs'])} runs) with `require_approval: false` and "
        f"an analysis of {data['intervals']} intervals of {data['interval_seconds']} s at "
        f"{data['period_seconds']} s periods (`ECS/Emulator` errors and p99 latency, "
        f"`ECS/ContainerInsights` CPU; the emulator sends {data['traffic_rps']:g} requests a "
        "second to each service without a load balancer, the canary's and the baseline's "
        "included). The time is the Verification stage in the run's result: from both services "
        "steady to the approval that follows the last interval's judgement, so the three "
        "interval timers and the last judgement's activity (one GetMetricData request and the "
        f"judge). Runs: {times}.\n",
    ]


async def main() -> int:
    """This measure alone, on its own emulator and Temporal dev server; prints the target,
    writes nothing outside the log directory."""
    cfg = Config.from_env()
    async with open_bench(cfg) as bench:
        results = {"analysis_e2e": await measure(bench)}
        (bench.log_dir / "analysis_e2e.json").write_text(json.dumps(results, indent=2))
    print("\n".join(section(results)))
    rows = targets(results)
    for name, value, ok in rows:
        print(f"{'met' if ok else 'NOT met'}: {name}: {value}")
    return 0 if rows and all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
