"""Measure "Release trains" (issue 25, `BENCH_MEASURES=train`): one `EcsReleaseTrain` of 1,000
services in four waves of 10, 90, 300 and 600, with `approval: "none"`, on 3 workers sharing one
ECS budget (100 calls/s), task start 5 s.

Targets: every service succeeds, no second over the budget, no retried activity attempt, and
the train's wall time at most 1.5 x the larger of (a) the sum over its waves of a lone
deployment's time (measured first, on the same workers) and (b) the train's ECS calls / budget.
Also reported: the train's history (each run's length and how many runs it continued into),
its `status` query's latency (the slowest of the samples taken while it ran), each worker's
peak RSS and the emulator's CPU.

`BENCH_TRAIN_WAVES` (e.g. "2,3,5") runs a smaller train: a short form for a loaded machine.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

from bench import deployments as d
from bench import load, server_metrics, train_timeline
from bench.harness import GATE_TIMER, Bench
from bench.stack import (
    cpu_seconds,
    dev_server_pid,
    fixed_work_seconds,
    idle_cpu_seconds,
    memory_kib,
)
from ecs_canary.names import TRAIN_WORKFLOW_TYPE, train_workflow_id_for, workflow_id_for
from ecs_canary.train import TrainResult, TrainStatus

FULL_WAVES = "10,90,300,600"
QUICK_WAVES = "2,3,5"
WORKERS = 3
TASK_START_SECONDS = 5.0
WALL_FACTOR = 1.5
STATUS_EVERY_SECONDS = 2.0


def wave_sizes(quick: bool) -> list[int]:
    default = QUICK_WAVES if quick else FULL_WAVES
    return [int(n) for n in os.environ.get("BENCH_TRAIN_WAVES", default).split(",")]


async def measure(bench: Bench) -> dict[str, Any]:
    """A lone deployment, then the train, on the same three workers sharing one budget."""
    cfg = bench.config
    sizes = wave_sizes(cfg.quick)
    bench.seed = bench.admin.reset()
    services = [f"t{w}x{i:03d}" for w, size in enumerate(sizes) for i in range(size)]
    lone_service = "tlone"
    bench.seed_services([lone_service, *services], TASK_START_SECONDS)
    task_queue = f"bench-train-{uuid.uuid4().hex[:6]}"
    workers = [bench.worker(f"worker-train-{i}", task_queue, shared=True) for i in range(WORKERS)]
    try:
        await load.shares_settled(workers, WORKERS)
        lone = await d.run_ecs_canary(
            bench.client,
            task_queue,
            d.request(bench.seed, lone_service, cfg.desired, cfg.poll, GATE_TIMER),
        )
        host_work = fixed_work_seconds()  # how fast the host is today, the workers idle
        bench.admin.reset_calls()
        server_before = server_metrics.read_metrics(bench.server_metrics_url)
        server = dev_server_pid()
        emulator_cpu_before = cpu_seconds(bench.emulator.pid)
        workers_cpu_before = [cpu_seconds(w.pid) for w in workers]
        server_cpu_before = cpu_seconds(server) if server else 0.0
        idle_before, measured_from = idle_cpu_seconds(), time.monotonic()
        waves, start = [], 0
        for index, size in enumerate(sizes):
            chunk = services[start : start + size]
            start += size
            bodies = [d.request(bench.seed, s, cfg.desired, cfg.poll, GATE_TIMER) for s in chunk]
            for body in bodies:
                del body["desired_count"]  # the bench's own note, not a request field
            waves.append({"name": f"wave-{index + 1}", "deployments": bodies})
        train = {
            "name": f"bench-{uuid.uuid4().hex[:6]}",
            "waves": waves,
            "approval": "none",
            "max_parallel": max(sizes),
        }
        ran = await _run_train(bench.client, task_queue, train)
        _keep_train_histories(bench.log_dir, str(train["name"]), ran["runs"])
        calls = bench.admin.calls()
        server_after = server_metrics.read_metrics(bench.server_metrics_url)
        emulator_cpu = cpu_seconds(bench.emulator.pid) - emulator_cpu_before
        workers_cpu = [
            cpu_seconds(w.pid) - before
            for w, before in zip(workers, workers_cpu_before, strict=True)
        ]
        server_cpu = cpu_seconds(server) - server_cpu_before if server else None
        # The share of the cores' time nothing ran: near 0, the machine was the limit.
        cores = os.cpu_count() or 1
        idle = idle_cpu_seconds() - idle_before
        idle_share = idle / (cores * (time.monotonic() - measured_from))
        peak_rss = [memory_kib(w.pid)["VmHWM"] / 1024 for w in workers]
    finally:
        for worker in workers:
            worker.stop()
    result: TrainResult | None = ran["result"]
    succeeded = sum(1 for s in result.services if s.outcome == "succeeded") if result else 0
    retried, cluster = 0, bench.seed["cluster"]
    histories = []
    for service in services:
        events = await d.fetch_history(bench.client, workflow_id_for(cluster, service))
        retried += d.activity_summary(events)["retried_attempts"]
        histories.append(events)
    lone_sum = lone.wall * len(sizes)
    by_calls = calls["total"] / cfg.budget
    outcome = {
        "waves": sizes,
        "count": len(services),
        "workers": WORKERS,
        "delay": TASK_START_SECONDS,
        "budget": cfg.budget,
        "succeeded": succeeded,
        "failure": ran["failure"],
        "lone_seconds": lone.wall,
        "lone_sum_seconds": lone_sum,
        "calls_seconds": by_calls,
        "wall_seconds": ran["wall"],
        "wall_limit_seconds": WALL_FACTOR * max(lone_sum, by_calls),
        "calls": calls,
        "retried_activity_attempts": retried,
        "history_runs": [len(events) for events in ran["runs"]],
        "status_max_seconds": ran["status_max_seconds"],
        "status_median_seconds": ran["status_median_seconds"],
        "status_samples": ran["status_samples"],
        "peak_rss_mib": peak_rss,
        "emulator_cpu_seconds": emulator_cpu,
        "workers_cpu_seconds": workers_cpu,
        "dev_server_cpu_seconds": server_cpu,
        "cores": cores,
        "fixed_work_seconds": host_work,
        "idle_share": idle_share,
        "deployment_history": _per_deployment(histories),
        "server": server_metrics.during(server_before, server_after),
        "timeline": {
            "began": ran["began"],
            "waves": train_timeline.wave_timeline(histories, sizes, ran["began"]),
            "train_tasks": train_timeline.train_tasks(ran["runs"], ran["began"]),
            "child_starts": train_timeline.child_starts(ran["runs"], ran["began"]),
            "calls": train_timeline.calls_timeline(calls["per_second"], ran["began"]),
            "status": ran["status_timeline"],
        },
    }
    del calls["per_second"]  # kept once, in the timeline
    bench.say(
        f"train of {len(services)} in waves {sizes}: {succeeded} succeeded in "
        f"{ran['wall']:.0f} s (limit {outcome['wall_limit_seconds']:.0f} s), max "
        f"{calls['max_per_second']}/s (as handled {calls['max_per_second_handled']}/s), {retried} "
        f"retried, history {outcome['history_runs']}, "
        f"status at most {ran['status_max_seconds']:.2f} s (median "
        f"{ran['status_median_seconds']:.2f} s); CPU s: workers "
        f"{sum(workers_cpu):.0f}, emulator {emulator_cpu:.0f}, dev server {server_cpu or 0:.0f}, "
        f"the {cores} cores idle {idle_share:.0%}, the host's fixed work {host_work:.3f} s; "
        f"per deployment {outcome['deployment_history']}"
    )
    timeline = outcome["timeline"]
    for line in train_timeline.summary(timeline["waves"], timeline["calls"], timeline["status"]):
        bench.say(line)
    bench.say(train_timeline.tasks_summary(timeline["train_tasks"], timeline["status"]))
    bench.say(server_metrics.summary(outcome["server"]))
    for line in train_timeline.starts_summary(timeline["child_starts"], sizes):
        bench.say(line)
    return outcome


def _keep_train_histories(log_dir: Path, name: str, runs: list[list[Any]]) -> None:
    """The train's runs' histories beside the results (`train-history-<run>.json`, first run
    first), as `temporal workflow show --output json` writes one: what the timeline sums up,
    event by event."""
    workflow_id = train_workflow_id_for(name)
    for index, events in enumerate(runs, start=1):
        path = log_dir / f"train-history-{index}.json"
        path.write_text(WorkflowHistory(workflow_id, events).to_json())


def _per_deployment(histories: list[list[Any]]) -> dict[str, float]:
    """The median deployment's history: its events, workflow tasks, activities (local ones
    apart) and signals, what each deployment costs the workers and the dev server."""
    counts = [d.event_type_counts(events) for events in histories]
    local = [d.activity_summary(events)["markers"].get("local activity", 0) for events in histories]
    return {
        "events": statistics.median(len(events) for events in histories),
        "workflow_tasks": statistics.median(c.get("WORKFLOW_TASK_COMPLETED", 0) for c in counts),
        "activities": statistics.median(c.get("ACTIVITY_TASK_SCHEDULED", 0) for c in counts),
        "local_activities": statistics.median(local),
        "signals": statistics.median(c.get("WORKFLOW_EXECUTION_SIGNALED", 0) for c in counts),
        "timers": statistics.median(c.get("TIMER_STARTED", 0) for c in counts),
    }


async def _run_train(client: Client, task_queue: str, train: dict[str, Any]) -> dict[str, Any]:
    """Start the train, sample its `status` until it ends, and read its runs' histories."""
    workflow_id = train_workflow_id_for(train["name"])
    began = time.time()
    handle = await client.start_workflow(
        TRAIN_WORKFLOW_TYPE, train, id=workflow_id, task_queue=task_queue, result_type=TrainResult
    )
    ending = asyncio.ensure_future(handle.result())
    latencies: list[float] = []
    asked_at: list[float] = []  # when each sample was asked, seconds from the start
    while not ending.done():
        asked = time.monotonic()
        try:
            await client.get_workflow_handle(workflow_id).query("status", result_type=TrainStatus)
        except Exception:  # noqa: BLE001 - a query racing a continue-as-new is asked again
            pass
        else:
            latencies.append(time.monotonic() - asked)
            asked_at.append(time.time() - began - latencies[-1])
        await asyncio.wait([ending], timeout=STATUS_EVERY_SECONDS)
    wall = time.time() - began
    result, failure = None, None
    try:
        result = ending.result()
    except WorkflowFailureError as err:
        failure = str(err.cause)
        details = getattr(err.cause, "details", None)
        if details:
            result = TrainResult.model_validate(details[0])
    return {
        "result": result,
        "failure": failure,
        "began": began,
        "wall": wall,
        "runs": await _train_runs(client, workflow_id),
        "status_max_seconds": max(latencies, default=0.0),
        "status_median_seconds": statistics.median(latencies) if latencies else 0.0,
        "status_samples": len(latencies),
        "status_timeline": [[at, latency] for at, latency in zip(asked_at, latencies, strict=True)],
    }


async def _train_runs(client: Client, workflow_id: str) -> list[list[Any]]:
    """The history of each run of the train, first to last (it continues as new)."""
    runs = []
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        run = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = list((await run.fetch_history()).events)
        runs.append(events)
        run_id = events[0].workflow_execution_started_event_attributes.continued_execution_run_id
    return runs[::-1]


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(what, measured, met) for each target of the measure."""
    t = results.get("train")
    if not t:
        return []
    return [
        ("Train: all succeed", f"{t['succeeded']}/{t['count']}", t["succeeded"] == t["count"]),
        (
            "Train: no second over budget",
            f"max {t['calls']['max_per_second']}/s (budget {t['budget']:g}/s)",
            t["calls"]["max_per_second"] <= t["budget"],
        ),
        (
            "Train: 0 retried attempts",
            str(t["retried_activity_attempts"]),
            t["retried_activity_attempts"] == 0,
        ),
        (
            "Train: wall <= 1.5 x max(lone x waves, calls / budget)",
            f"{t['wall_seconds']:.0f} s (limit {t['wall_limit_seconds']:.0f} s)",
            t["wall_seconds"] <= t["wall_limit_seconds"],
        ),
        (
            "Train: history under 10,240 events per run",
            f"max {max(t['history_runs'])} ({len(t['history_runs'])} runs)",
            max(t["history_runs"]) < 10240,
        ),
        (
            "Train: status under 1 s",
            f"max {t['status_max_seconds']:.2f} s ({t['status_samples']} samples)",
            t["status_max_seconds"] < 1.0,
        ),
    ]


def section(results: dict[str, Any]) -> list[str]:
    t = results.get("train")
    if not t:
        return []
    out = [
        "## Release trains\n",
        f"One `EcsReleaseTrain` of {t['count']} services in waves of "
        f'{", ".join(map(str, t["waves"]))}, `approval: "none"`, `max_parallel` the largest '
        f"wave, on {t['workers']} `python worker.py` processes sharing one ECS budget of "
        f"{t['budget']:g} calls/s, task start {t['delay']:g} s. A lone deployment on the same "
        f"workers took {t['lone_seconds']:.1f} s; the train's ECS calls at the budget take "
        f"{t['calls_seconds']:.0f} s. The train continues as new between waves once its history "
        'reaches 1,000 events, and within a wave past 6,000 (README, "Release trains"). Its '
        "targets are in the table at the top.\n",
        f"Wall time {t['wall_seconds']:.0f} s (limit {t['wall_limit_seconds']:.0f} s); "
        f"{t['succeeded']}/{t['count']} succeeded; max {t['calls']['max_per_second']} ECS calls/s; "
        f"{t['retried_activity_attempts']} retried activity attempts; the slowest `status` "
        f"answered in {t['status_max_seconds']:.2f} s ({t['status_samples']} samples).",
        "",
        f"History per run: {', '.join(map(str, t['history_runs']))} events. Peak RSS per worker: "
        f"{', '.join(f'{mib:.0f} MiB' for mib in t['peak_rss_mib'])}. Emulator CPU: "
        f"{t['emulator_cpu_seconds']:.0f} s. ECS calls: {t['calls']['total']}.",
        "",
        *_costs(t),
        *_train_tasks(t),
        *_server(t),
    ]
    if t["failure"]:
        out += [f"The train failed: {t['failure']}", ""]
    return out


def _train_tasks(t: dict[str, Any]) -> list[str]:
    """The train's own workflow tasks, which a `status` query waits for (absent from results
    measured before they were recorded)."""
    timeline = t.get("timeline", {})
    if "train_tasks" not in timeline:
        return []
    summary = train_timeline.tasks_summary(timeline["train_tasks"], timeline["status"])
    return [summary[0].upper() + summary[1:] + ".", ""]


def _server(t: dict[str, Any]) -> list[str]:
    """What the dev server counted during the train (absent from results measured before it
    was recorded)."""
    if "server" not in t:
        return []
    line = server_metrics.summary(t["server"])
    return [line[0].upper() + line[1:] + ".", ""]


def _machine(t: dict[str, Any]) -> str:
    """How idle the machine's cores were during the train, and how fast its host was that
    day (each absent from results measured before it was recorded)."""
    if "idle_share" not in t:
        return ""
    idle = f"; the machine's {t['cores']} cores were idle {t['idle_share']:.0%} of the time"
    if "fixed_work_seconds" not in t:
        return idle
    return (
        f"{idle}; a fixed piece of work took {t['fixed_work_seconds']:.3f} s of CPU on the "
        "host before the train (`bench.stack.fixed_work_seconds`)"
    )


def _costs(t: dict[str, Any]) -> list[str]:
    """Where the train's CPU went, per process kind, and what the median deployment cost the
    workers and the dev server (absent from results measured before they were recorded)."""
    if "workers_cpu_seconds" not in t:
        return []
    workers = ", ".join(f"{seconds:.0f} s" for seconds in t["workers_cpu_seconds"])
    server = t["dev_server_cpu_seconds"]
    history = t["deployment_history"]
    return [
        f"CPU during the train: workers {workers}; emulator {t['emulator_cpu_seconds']:.0f} s; "
        f"dev server {f'{server:.0f} s' if server is not None else 'not found'}"
        f"{_machine(t)}. The median "
        f"`status` answered in {t['status_median_seconds']:.2f} s. The median deployment: "
        f"{history['events']:.0f} history events, {history['workflow_tasks']:.0f} workflow "
        f"tasks, {history['activities']:.0f} activity tasks, {history['local_activities']:.0f} "
        f"local activities, {history['signals']:.0f} signals received.",
        "",
    ]
