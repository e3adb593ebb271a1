"""BENCHMARKS.md from one run's results."""

# ruff: noqa: E501  (the report's prose)

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

from bench import analysis, analysis_e2e, cancellation, flood, load, steps, train
from bench.stack import machine

STAGES = ("canary_deploy", "canary_delete", "rolling_deploy")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _mb(mib: float) -> float:
    return mib * 1024 * 1024 / 1e6


# A target whose measure this bench did not run (quick mode, or not in BENCH_MEASURES).
_NOT_RUN = "not run (quick mode, or not in BENCH_MEASURES)"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**NOT met**")


def _singles(results: dict[str, Any], variant: str, delay: float) -> list[dict[str, Any]]:
    return [r for r in results.get("single", []) if r["variant"] == variant and r["delay"] == delay]


def _calls_by_op(runs: list[dict[str, Any]]) -> dict[str, float]:
    ops = sorted({op for r in runs for op in r["calls"]["by_operation"]})
    return {op: _median([r["calls"]["by_operation"].get(op, 0) for r in runs]) for op in ops}


def targets(cfg: Any, results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    five = _singles(results, "ecs-canary", 5.0)
    if five:
        ratio = _median([r["ratio"] for r in five])
        rows.append(
            (
                "Overhead ratio <= 1.10 at 5 s task start (median)",
                f"{ratio:.3f}",
                _met(ratio <= 1.10),
            )
        )
    else:
        rows.append(("Overhead ratio <= 1.10 at 5 s task start", _NOT_RUN, "n/a"))
    for delay in cfg.delays:
        target = f"ECS calls per deployment <= baseline ({delay:g} s start, poll {cfg.poll:g} s)"
        ours_runs = _singles(results, "ecs-canary", delay)
        base_runs = _singles(results, "baseline", delay)
        if not ours_runs or not base_runs:  # a bench of other measures: no verdict
            rows.append((target, _NOT_RUN, "n/a"))
            continue
        ours = _median([r["calls"]["total"] for r in ours_runs])
        base = _median([r["calls"]["total"] for r in base_runs])
        rows.append((target, f"{ours:g} vs {base:g}", _met(ours <= base)))
    conc = results.get("concurrency", [])
    # The 1.5x target is at 100; the 300 run has targets of its own (bench.load).
    top = next((r for r in conc if r["count"] == 100), None) or (
        max(conc, key=lambda r: r["count"]) if conc else None
    )
    lone = next((r for r in conc if r["count"] == 1), None)
    if top:
        label = f"{top['count']} concurrent" + ("" if top["count"] == 100 else " (quick mode)")
        share = top["wait_describes"] / top["estimated_polls"] if top["estimated_polls"] else 0
        rows.append(
            (
                f"{label}: DescribeServices <= 1/5 of one-call-per-wait",
                f"{top['wait_describes']} / {top['estimated_polls']} = {share:.3f}",
                _met(share <= 0.2),
            )
        )
        rounds = results.get("concurrency_rounds", [conc])
        every_run = [r for runs in rounds for r in runs]
        top_runs = [r for r in every_run if r["count"] == top["count"]]
        succeeded = sum(r["succeeded"] for r in top_runs)
        attempted = sum(r["count"] for r in top_runs)
        rows.append(
            (
                f"{label}: all succeed"
                + (f" ({len(top_runs)} rounds)" if len(top_runs) > 1 else ""),
                f"{succeeded}/{attempted}",
                _met(succeeded == attempted),
            )
        )
        if lone:
            ratio = top["p95"] / lone["p50"]
            median_of = f" (median of {len(rounds)} rounds)" if len(rounds) > 1 else ""
            rows.append(
                (
                    f"{label}: p95 wall <= 1.5x a lone deployment's{median_of}",
                    f"{top['p95']:.2f} s / {lone['p50']:.2f} s = {ratio:.2f}x",
                    _met(ratio <= 1.5),
                )
            )
        rows.append(
            (
                f"{label}: worker peak RSS <= 300 MB",
                f"{_mb(top['peak_rss_mib']):.0f} MB",
                _met(_mb(top["peak_rss_mib"]) <= 300),
            )
        )
        busiest = max(r["calls"]["max_per_second"] for r in every_run)
        rows.append(
            (
                f"ECS calls in any second <= budget ({cfg.budget:g}/s), all concurrency runs",
                f"max {busiest}/s",
                _met(busiest <= cfg.budget),
            )
        )
    happy = results.get("history", {}).get("happy path (approve signal)")
    if happy:
        rows.append(
            ("Happy path history <= 80 events", str(happy["events"]), _met(happy["events"] <= 80))
        )
    kill = results.get("kill")
    if kill:
        rows.append(
            (
                f"kill -9 of 1 of 2 workers, {kill['count']} deployments: all finish correctly",
                f"{kill['succeeded']}/{kill['count']}",
                _met(kill["succeeded"] == kill["count"]),
            )
        )
    rows.extend((name, value, _met(ok)) for name, value, ok in load.targets(cfg, results))
    rows.extend((name, value, _met(ok)) for name, value, ok in steps.targets(results))
    rows.extend((name, value, _met(ok)) for name, value, ok in analysis.targets(results))
    rows.extend((name, value, _met(ok)) for name, value, ok in analysis_e2e.targets(results))
    rows.extend((name, value, _met(ok)) for name, value, ok in cancellation.targets(results))
    rows.extend((name, value, _met(ok)) for name, value, ok in flood.targets(results))
    rows.extend((name, value, _met(ok)) for name, value, ok in train.targets(results))
    return rows


def render(cfg: Any, results: dict[str, Any], command: str) -> str:
    out: list[str] = []
    add = out.append
    add("# Benchmarks\n")
    add(
        f"Written by `{command}` (`bench/run.py`); do not edit by hand. Every number below comes "
        "from this one run; ecs-canary and the baseline ran side by side, alternating, against the "
        "same emulator with the same settings.\n"
    )
    add("## Machine\n")
    add("| | |\n|---|---|")
    for key, value in machine():
        add(f"| {key} | {value} |")
    add(f"| Date | {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} |")
    add(f"| Command | `{command}` |")
    add(f"| Run time | {results.get('elapsed_seconds', 0):.0f} s |\n")
    add(
        "The machine is shared (2 cores; other test runs may have been going on), and the "
        "Temporal dev server, the emulator, the worker(s) and the bench driver all run on it.\n"
    )

    add("## Setup\n")
    add(
        f"- ECS: `python -m ecs_emulator` as a subprocess; task start delay as stated per measure, "
        f"task stop delay {cfg.task_stop_seconds:g} s, scheduler tick {cfg.tick_seconds:g} s. "
        f"Every main service exists beforehand (old image, desired {cfg.desired}, stable), seeded "
        "outside the measured window with fast task starts."
    )
    add(
        "- Temporal: `WorkflowEnvironment.start_local` with `.venv/bin/temporal` (dev server, "
        "in-memory, its Prometheus metrics on a free loopback port: `bench/server_metrics.py`; "
        "search attributes read from the server's cache, as on a production server, not from "
        "its database on every read: `bench.stack.DEV_SERVER_ARGS`)."
    )
    add(
        f"- ecs-canary: `python worker.py` as a subprocess with `TEMPORAL_ADDRESS`, "
        f"`TEMPORAL_TASK_QUEUE`, `AWS_ENDPOINT_URL`, dummy credentials and "
        f"`ECS_CANARY_ECS_CALLS_PER_SECOND={cfg.budget:g}` (the budget every measure runs with); "
        f"other worker settings at their defaults. Request: desired {cfg.desired}, canary desired 1, "
        f"`poll_interval_seconds: {cfg.poll:g}`."
    )
    add(
        f"- Baseline: `bench/baseline.py`, plain boto3 with boto3's own waiters, "
        f"`WaiterConfig.Delay = {cfg.poll:g}` s (the same poll interval), in the bench process."
    )
    add(
        "- Gate: for measures 1, 2, 4 and 5 the request has `verification: {timeout_seconds: 0.05, "
        "on_timeout: approve}`, so the gate approves itself 50 ms after it opens, with no client "
        "round trip; the verification stage's own duration (from the workflow's stage timings) is "
        "then subtracted from the wall time. The baseline decides at once (no gate). For measure 3 "
        "the bench sends the `approve` / `reject` signal as soon as the `status` query (polled every "
        "50 ms) shows `gate_open`. (The 50 ms gate timer is measured firing after about 1 s: see "
        "the Gate column; it is excluded from the overhead ratio and is the same for a lone and a "
        "concurrent deployment.)\n"
    )

    add("## Targets\n")
    add("| Target | Measured | |\n|---|---|---|")
    for name, value, met in targets(cfg, results):
        add(f"| {name} | {value} | {met} |")
    add("")

    add("## 1. Overhead ratio\n")
    add(
        "Overhead ratio = (deployment wall time - gate time) / ECS critical path. Wall time: "
        "ecs-canary from the `start_workflow` call to the result; the baseline from its first call "
        "to the last waiter's return. ECS critical path, from the emulator's own timestamps "
        "(DescribeServices / DescribeTasks after the run), summed over the three stages that wait on "
        "ECS:\n"
    )
    add(
        "- canary deploy: the canary service's deployment `createdAt` (the CreateService call) -> "
        "its last task's `startedAt`;"
    )
    add(
        "- canary delete: the canary task's first `stoppingAt` -> last `stoppedAt` (the service "
        "goes INACTIVE in that same scheduler tick; the gap between DeleteService and the next tick, "
        f"<= {cfg.tick_seconds:g} s, counts as overhead);"
    )
    add(
        "- rolling deploy: the main service's new deployment `createdAt` (the UpdateService call) -> "
        "its `updatedAt`, the moment the emulator set `rolloutState` COMPLETED.\n"
    )
    add(
        "Registering the task definition and the gate count as zero ECS time. Median of "
        f"{cfg.repeats} runs per variant and delay (min-max in brackets).\n"
    )
    add(
        "| Task start | Variant | Wall | Gate | Wall - gate | ECS: canary + delete + rolling = total "
        "| Overhead ratio |"
    )
    add("|---|---|---|---|---|---|---|")
    for delay in cfg.delays:
        for variant in ("ecs-canary", "baseline"):
            runs = _singles(results, variant, delay)
            if not runs:
                continue
            ratios = [r["ratio"] for r in runs]
            path = " + ".join(f"{_median([r['ecs_path'][s] for r in runs]):.2f}" for s in STAGES)
            add(
                f"| {delay:g} s | {variant} | {_median([r['wall'] for r in runs]):.2f} s "
                f"| {_median([r['gate'] for r in runs]):.2f} s "
                f"| {_median([r['wall_without_gate'] for r in runs]):.2f} s "
                f"| {path} = {_median([r['ecs_seconds'] for r in runs]):.2f} s "
                f"| {_median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}] |"
            )
    add("")

    add(
        "Where the time goes (median seconds per stage; ecs-canary's from the workflow's own stage "
        "timings, the baseline's between its waiters' returns; \"outside\" is ecs-canary's wall time "
        "not in any stage: starting the run and getting its result):\n"
    )
    add(
        "| Task start | Stage | ECS critical path | ecs-canary | baseline | ecs-canary - baseline |"
    )
    add("|---|---|---|---|---|---|")
    for delay in cfg.delays:
        ours, base = _singles(results, "ecs-canary", delay), _singles(results, "baseline", delay)
        if not ours or not base:
            continue
        for stage in STAGES:
            a = _median([r["stages"].get(stage, 0) for r in ours])
            b = _median([r["stages"].get(stage, 0) for r in base])
            e = _median([r["ecs_path"][stage] for r in ours])
            add(f"| {delay:g} s | {stage} | {e:.2f} | {a:.2f} | {b:.2f} | {a - b:+.2f} |")
        outside = _median([r["wall"] - sum(r["stages"].values()) for r in ours])
        add(f"| {delay:g} s | outside stages | - | {outside:.2f} | - | {outside:+.2f} |")
    add("")

    add("## 2. ECS API calls per deployment\n")
    add(
        "Counted by the emulator (`/_emulator/calls`, reset before each deployment; the bench's own "
        f"DescribeTasks for the timestamps come after). Median per operation; poll {cfg.poll:g} s "
        "for both.\n"
    )
    for delay in cfg.delays:
        ours, base = _singles(results, "ecs-canary", delay), _singles(results, "baseline", delay)
        our_ops, base_ops = _calls_by_op(ours), _calls_by_op(base)
        add(f"**Task start {delay:g} s**\n")
        add("| Operation | ecs-canary | baseline |\n|---|---|---|")
        for op in sorted(set(our_ops) | set(base_ops)):
            add(f"| {op} | {our_ops.get(op, 0):g} | {base_ops.get(op, 0):g} |")
        add(
            f"| **total** | **{_median([r['calls']['total'] for r in ours]):g}** "
            f"| **{_median([r['calls']['total'] for r in base]):g}** |\n"
        )

    add("## 3. Temporal history events per deployment\n")
    add(
        f"Task start {cfg.history_delay:g} s, poll {cfg.poll:g} s. Rollback: "
        '`inject_fault(main service, "nopull")` before the deployment, so the rolling deploy\'s '
        "tasks fail to pull and the workflow restores the previous task definition.\n"
    )
    hist = results.get("history", {})
    timer_runs = [r for r in results.get("single", []) if r["variant"] == "ecs-canary"]
    if timer_runs:
        hist = {
            **hist,
            "happy path (gate timer approves, measure 1 runs)": {
                "outcome": "succeeded",
                "events": max(r["history_events"] for r in timer_runs),
                "types": timer_runs[0]["history_types"],
                "activities": None,
            },
        }
    types = sorted({t for p in hist.values() for t in p["types"]})
    add(
        "| Path | Outcome | Events | "
        + " | ".join(t.replace("_", " ").lower() for t in types)
        + " |"
    )
    add("|---|---|---|" + "---|" * len(types))
    for name, path in hist.items():
        add(
            f"| {name} | {path['outcome']} | **{path['events']}** | "
            + " | ".join(str(path["types"].get(t, 0)) for t in types)
            + " |"
        )
    add("")
    for name, path in hist.items():
        if path.get("activities"):
            acts = ", ".join(f"{k} {v}" for k, v in sorted(path["activities"].items()))
            markers = ", ".join(f"{k} {v}" for k, v in sorted(path.get("markers", {}).items()))
            add(f"- {name}: activities {acts}; markers: {markers or 'none'}")
    add("")

    conc = results.get("concurrency", [])
    if conc:
        add("## 4. Concurrent deployments on one worker\n")
        add(
            f"N distinct services deployed at once on one `python worker.py` (fresh process per N), "
            f"task start {conc[0]['delay']:g} s, poll {cfg.poll:g} s, budget {cfg.budget:g} ECS "
            "calls/s. Wall time per deployment from its `start_workflow` to its result. Peak RSS is "
            "the worker's VmHWM from /proc (RSS also sampled every 0.25 s); CPU is the worker's "
            "user+system time during the run. Max calls/s is the emulator's busiest wall-clock "
            "second. All deployments are checked afterwards: outcome succeeded, main service on the "
            "new task definition at the desired count with one deployment, canary INACTIVE. "
            "Retried attempts: activity and local activity attempts after the first, from the "
            "histories (a wait whose heartbeat came too late is one).\n"
        )
        add(
            "| N | Succeeded | p50 wall | p95 wall | max wall | Peak RSS | CPU | ECS calls/deployment "
            "| Max ECS calls/s | Throttled | Retried attempts (after a heartbeat timeout) "
            "| CPU/deployment | Workers |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        shared = results.get("shared")
        for r in conc + ([shared] if shared else []):
            workers = f"{r['workers']}, one shared budget" if r.get("shared") else r["workers"]
            add(
                f"| {r['count']} | {r['succeeded']}/{r['count']} | {r['p50']:.2f} s "
                f"| {r['p95']:.2f} s | {r['max']:.2f} s | {_mb(r['peak_rss_mib']):.0f} MB "
                f"| {r['cpu_seconds']:.1f} s | {r['calls_per_deployment']:.1f} "
                f"| {r['calls']['max_per_second']} | {r['calls']['throttled']} "
                f"| {r['retried_activity_attempts']} ({r.get('heartbeat_timeouts', '?')}) "
                f"| {r['cpu_seconds'] / r['count']:.3f} s "
                f"| {workers} |"
            )
        add("")
        if shared:
            add(load.shared_note(cfg, shared))
        rounds = results.get("concurrency_rounds", [])
        if len(rounds) > 1:
            add(
                f"The measure ran in {len(rounds)} rounds (every N once per round); each row above "
                "and below is the round with the median p95 for that N. Every round:\n"
            )
            add("| Round | " + " | ".join(f"N={r['count']} p95" for r in rounds[0]) + " |")
            add("|---|" + "---|" * len(rounds[0]))
            for number, runs in enumerate(rounds, 1):
                add(
                    f"| {number} | "
                    + " | ".join(
                        f"{r['p95']:.2f} s ({r['succeeded']}/{r['count']} ok)" for r in runs
                    )
                    + " |"
                )
            add("")
        add(
            "Stage durations across the N deployments (p50 / p95 seconds, from the workflows' own "
            "stage timings), and the emulator's CPU time during the run:\n"
        )
        add(
            "| N | canary_deploy | verification (gate) | canary_delete | rolling_deploy | Emulator CPU |"
        )
        add("|---|---|---|---|---|---|")
        for r in conc:
            cells = " | ".join(
                f"{r['stages'][st]['p50']:.2f} / {r['stages'][st]['p95']:.2f}"
                for st in ("canary_deploy", "verification", "canary_delete", "rolling_deploy")
            )
            add(f"| {r['count']} | {cells} | {r['emulator_cpu_seconds']:.1f} s |")
        add("")
        add(
            "DescribeServices: describes are shared (one DescribeServices of up to 10 services "
            "per cluster and poll tick, the deployments' first describe included). "
            "One-call-per-wait is what the same describes would have cost unshared: per wait, one "
            "poll at every multiple of the poll interval from its start until it ended (wait "
            "start/end from the histories' ActivityTaskStarted / Completed times), plus the one "
            "describe_services (local) activity per deployment.\n"
        )
        add("| N | DescribeServices | One-call-per-wait (estimated) | Share |")
        add("|---|---|---|---|")
        for r in conc:
            share = r["wait_describes"] / r["estimated_polls"] if r["estimated_polls"] else 0
            add(f"| {r['count']} | {r['wait_describes']} | {r['estimated_polls']} | {share:.3f} |")
        add("")
        add("ECS calls by operation (all N deployments together):\n")
        ops = sorted({op for r in conc for op in r["calls"]["by_operation"]})
        add("| N | " + " | ".join(ops) + " |")
        add("|---|" + "---|" * len(ops))
        for r in conc:
            add(
                f"| {r['count']} | "
                + " | ".join(str(r["calls"]["by_operation"].get(op, 0)) for op in ops)
                + " |"
            )
        add("")

    kill = results.get("kill")
    if kill:
        add("## 5. Worker killed mid-run\n")
        add(
            f"{kill['count']} deployments on two `python worker.py` processes sharing one task "
            f"queue (task start {kill['delay']:g} s); one worker got `kill -9` "
            f"{kill['killed_at']:.1f} s after the deployments started. Checked afterwards as in 4.\n"
        )
        add(
            "| Deployments | Finished correctly | p50 wall | p95 wall | max wall | Retried activity "
            "attempts | Workflow task timeouts | Activity timeouts | Max ECS calls/s |"
        )
        add("|---|---|---|---|---|---|---|---|---|")
        add(
            f"| {kill['count']} | {kill['succeeded']}/{kill['count']} | {kill['p50']:.2f} s "
            f"| {kill['p95']:.2f} s | {kill['max']:.2f} s | {kill['retried_activity_attempts']} "
            f"| {kill['workflow_task_timeouts']} | {kill['activity_timeouts']} "
            f"| {kill['calls']['max_per_second']} |"
        )
        add(
            "\nHere the ECS call budget is per worker process: two workers on one queue may together "
            "send up to twice `ECS_CANARY_ECS_CALLS_PER_SECOND` (the max calls/s above); measure 4's "
            "last row shares one budget among workers instead."
        )
        if kill["failures"]:
            add("\nFailures:\n")
            for service, problem in kill["failures"].items():
                add(f"- {service}: {problem}")
        add("")
    out.extend(steps.section(results))
    out.extend(load.profile_section(results))
    out.extend(analysis.section(results))
    out.extend(analysis_e2e.section(results))
    out.extend(cancellation.section(results))
    out.extend(flood.section(results))
    out.extend(train.section(results))
    return "\n".join(out) + "\n"
