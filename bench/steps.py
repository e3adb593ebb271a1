"""Measure 6, verification steps: what a `run_task` step and an `http` step cost beyond the work
they wait for, as the workflow itself reports them.

One deployment per run, with two steps and `require_approval: false`, so the canary is approved
the moment both have passed and nobody's reaction time is in the numbers:

- `smoke` (run_task): one task of the canary's own task definition, which the emulator runs for
  `Config.task_run_seconds` (5 s) after its start delay and then stops with exit code 0. Its ECS
  time is the task's `createdAt` (the RunTask call) -> `stoppedAt`, the emulator's own
  timestamps (DescribeTasks afterwards, the task found by the step's startedBy `<run id>:smoke`).
- `health` (http): HTTP_REQUESTS GET requests without pauses against a server in the bench
  process that times every request itself; the step's own requests take the sum of those.

A step's cost is its `started_at` -> `ended_at` in the result's `verification_steps`: workflow
time, from the workflow task that starts the step (and schedules its activity) to the one that
records its verdict, so the dispatch of the activity and the return of its result count.

    .venv/bin/python -m bench.steps    # this measure alone (BENCH_REPEATS, BENCH_QUICK apply)
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import deployments as d
from bench.harness import Bench, Config, open_bench
from ecs_canary.steps import StepState

RUN_TASK_STEP = "smoke"
HTTP_STEP = "health"
HTTP_REQUESTS = 10
# What the server takes per answer: a health endpoint that does a little work, so that the
# requests' own time is not nothing next to the overhead.
HTTP_ANSWER_SECONDS = 0.02
# The emulator's start delay for the measure's tasks (the test task's too), like measure 3's.
TASK_START_SECONDS = 1.0
# The targets (issue 13): run_task step <= 5 % over its ECS time; http step <= 0.5 s over its
# own requests.
RUN_TASK_MAX_RATIO = 1.05
HTTP_MAX_OVERHEAD_SECONDS = 0.5
_BODY = b"ok"


class TimedServer:
    """An HTTP/1.1 server on 127.0.0.1 in a thread of the bench process; every answer is 200
    after `answer_seconds`. `requests` holds each request's (began, ended) wall-clock time,
    taken by the server: from the parsed request to the flushed answer. The server's own view
    leaves the client's work (httpx, the TCP connect) out of the requests' time, so it counts
    against the step, never for it."""

    def __init__(self, answer_seconds: float) -> None:
        self.answer_seconds = answer_seconds
        self.requests: list[tuple[float, float]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/health"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        timed = self

        class Answer(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the step's one httpx client uses it
            # TCP_NODELAY, as real servers set it: else the body, written after the headers,
            # waits for the client's delayed ACK (40 ms a request on Linux), a cost of this
            # server's, not of the step.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                began = time.time()
                time.sleep(timed.answer_seconds)
                self.send_response(200)
                self.send_header("Content-Length", str(len(_BODY)))
                self.end_headers()
                self.wfile.write(_BODY)
                self.wfile.flush()
                timed.requests.append((began, time.time()))

            def log_message(self, *args: Any) -> None:
                pass

        return Answer

    def __enter__(self) -> TimedServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def verification(url: str) -> dict[str, Any]:
    """The request's `verification`: both steps, approved automatically once they passed."""
    return {
        "require_approval": False,
        "steps": [
            {
                "name": RUN_TASK_STEP,
                "type": "run_task",
                "overrides": {"containerOverrides": [{"name": "web", "command": ["./smoke.sh"]}]},
                "count": 1,
                "timeout_seconds": 120,
            },
            {
                "name": HTTP_STEP,
                "type": "http",
                "url": url,
                "requests": HTTP_REQUESTS,
                "interval_seconds": 0,
                "expect_status": [200],
                "max_latency_ms": 1000,
                "timeout_seconds": 60,
            },
        ],
    }


def _window(state: StepState) -> tuple[float, float]:
    """The step's started_at and ended_at (epoch seconds); a step that did not pass is an error:
    its time would measure something else."""
    if state.state != "passed" or state.started_at is None or state.ended_at is None:
        raise RuntimeError(f"step {state.name} is {state.state}: {state.summary}")
    return state.started_at.timestamp(), state.ended_at.timestamp()


def step_task(ecs: Any, cluster: str, started_by: str) -> dict[str, Any]:
    """The run_task step's one task, found by its startedBy token; more than one is an error
    (the step must start exactly one)."""
    arns: list[str] = []
    for status in ("RUNNING", "STOPPED"):
        arns += ecs.list_tasks(cluster=cluster, startedBy=started_by, desiredStatus=status)[
            "taskArns"
        ]
    if len(arns) != 1:
        raise RuntimeError(f"{len(arns)} tasks started by {started_by}, expected 1")
    task: dict[str, Any] = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"][0]
    if task["lastStatus"] != "STOPPED":
        raise RuntimeError(f"test task {arns[0]} is {task['lastStatus']}")
    return task


def run_task_costs(state: StepState, task: dict[str, Any]) -> dict[str, float]:
    """ECS time (createdAt -> stoppedAt, in its three phases) against the step's time; what
    the step adds is before RunTask (start -> createdAt) and after STOPPED (stoppedAt -> end)."""
    began, ended = _window(state)
    created, started, stopping, stopped = (
        task[key].timestamp() for key in ("createdAt", "startedAt", "stoppingAt", "stoppedAt")
    )
    return {
        "step": ended - began,
        "ecs": stopped - created,
        "pending": started - created,
        "running": stopping - started,
        "stopping": stopped - stopping,
        "before": created - began,
        "after": ended - stopped,
        "ratio": (ended - began) / (stopped - created),
    }


def http_costs(state: StepState, requests: list[tuple[float, float]]) -> dict[str, float]:
    """The step's time against its requests' own (the server's sum); the overhead splits into
    before the first request, between requests and after the last."""
    began, ended = _window(state)
    if len(requests) != HTTP_REQUESTS:
        raise RuntimeError(f"the server saw {len(requests)} requests, expected {HTTP_REQUESTS}")
    own = sum(end - start for start, end in requests)
    first, last = requests[0][0], requests[-1][1]
    return {
        "step": ended - began,
        "requests": own,
        "before": first - began,
        "between": last - first - own,
        "after": ended - last,
        "overhead": ended - began - own,
    }


async def measure(bench: Bench) -> dict[str, Any]:
    """`Config.repeats` deployments on a fresh emulator account and a worker of their own."""
    cfg = bench.config
    bench.seed = bench.admin.reset()
    task_queue = f"bench-steps-{uuid.uuid4().hex[:6]}"
    worker = bench.worker("worker-steps", task_queue)
    try:
        with TimedServer(HTTP_ANSWER_SECONDS) as server:
            runs = [
                await _one_run(bench, task_queue, server, f"steps{rep}")
                for rep in range(cfg.repeats)
            ]
    finally:
        worker.stop()
    return {
        "task_start_seconds": TASK_START_SECONDS,
        "task_run_seconds": cfg.task_run_seconds,
        "task_stop_seconds": cfg.task_stop_seconds,
        "poll": cfg.poll,
        "answer_seconds": HTTP_ANSWER_SECONDS,
        "runs": runs,
    }


async def _one_run(
    bench: Bench, task_queue: str, server: TimedServer, service: str
) -> dict[str, Any]:
    """One deployment of `service` (seeded first) with both steps, and what they cost."""
    cfg = bench.config
    bench.seed_services([service], TASK_START_SECONDS)
    server.requests.clear()
    body = d.request(bench.seed, service, cfg.desired, cfg.poll, verification(server.url))
    run = await d.run_ecs_canary(bench.client, task_queue, body)
    if run.outcome != "succeeded" or run.result is None:
        raise RuntimeError(f"steps deployment of {service}: {run.outcome}")
    states = {s.name: s for s in run.result.verification_steps}
    described = await bench.client.get_workflow_handle(f"bench/{service}").describe()
    task = step_task(bench.ecs, bench.seed["cluster"], f"{described.run_id}:{RUN_TASK_STEP}")
    run_task = run_task_costs(states[RUN_TASK_STEP], task)
    http = http_costs(states[HTTP_STEP], list(server.requests))
    bench.say(
        f"steps {service}: run_task {run_task['step']:.2f}s over ECS {run_task['ecs']:.2f}s "
        f"= {run_task['ratio']:.3f}; http {http['step']:.3f}s over its requests "
        f"{http['requests']:.3f}s = +{http['overhead']:.3f}s"
    )
    return {
        "service": service,
        "run_task": run_task,
        "http": http,
        "summaries": {name: state.summary for name, state in states.items()},
    }


def _median(runs: list[dict[str, Any]], step: str, key: str) -> float:
    return statistics.median(r[step][key] for r in runs)


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The two target rows (name, measured, met), judged on the median run like measure 1."""
    data = results.get("steps")
    if not data or not data["runs"]:
        return []
    runs = data["runs"]
    step, ecs, ratio = (_median(runs, "run_task", key) for key in ("step", "ecs", "ratio"))
    own, overhead = (_median(runs, "http", key) for key in ("requests", "overhead"))
    return [
        (
            f"run_task step, task runs {data['task_run_seconds']:g} s: step time <= "
            f"{RUN_TASK_MAX_RATIO:g}x its ECS time (median)",
            f"{step:.2f} s / {ecs:.2f} s = {ratio:.3f}",
            ratio <= RUN_TASK_MAX_RATIO,
        ),
        (
            f"http step, {HTTP_REQUESTS} requests: step time - its requests' time <= "
            f"{HTTP_MAX_OVERHEAD_SECONDS:g} s (median)",
            f"+{overhead:.3f} s (requests {own:.3f} s)",
            overhead <= HTTP_MAX_OVERHEAD_SECONDS,
        ),
    ]


def section(results: dict[str, Any]) -> list[str]:
    """BENCHMARKS.md's section 6 (nothing when the measure did not run)."""
    data = results.get("steps")
    if not data or not data["runs"]:
        return []
    runs = data["runs"]
    out = [
        "## 6. Verification steps\n",
        f"One deployment per run ({len(runs)} runs; task start {data['task_start_seconds']:g} s, "
        f"stop {data['task_stop_seconds']:g} s, poll {data['poll']:g} s) with "
        f"`verification: {{require_approval: false, steps: [{RUN_TASK_STEP}, {HTTP_STEP}]}}`, so "
        "the canary is approved as soon as both steps passed. A step's time is its `started_at` -> "
        "`ended_at` in the result's `verification_steps`: workflow time, from the workflow task "
        "that starts the step and schedules its activity to the one that records its verdict.\n",
        f"- `{RUN_TASK_STEP}` (run_task: the canary's task definition with a command override, "
        f"count 1): the emulator (`--task-run-seconds {data['task_run_seconds']:g}`) runs the task "
        f"for {data['task_run_seconds']:g} s after its start delay and stops it, exit code 0. ECS "
        "time: the task's `createdAt` (the RunTask call) -> `stoppedAt`, from DescribeTasks after "
        f"the run (the task found by the step's startedBy `<run id>:{RUN_TASK_STEP}`; exactly "
        "one). "
        "The step adds the time before RunTask (step start -> `createdAt`) and after STOPPED "
        "(`stoppedAt` -> step end: the step sees the stop at its next DescribeTasks, one every "
        "poll interval).",
        f"- `{HTTP_STEP}` (http: {HTTP_REQUESTS} GET requests, `interval_seconds: 0`): a server in "
        f"the bench process (127.0.0.1, HTTP/1.1 keep-alive) answers each with 200 after "
        f"{data['answer_seconds'] * 1000:g} ms and times it, from the parsed request to the "
        "flushed answer; the step's own requests take the sum. The rest is overhead: before the "
        "first request, between requests (the worker's and httpx's own work per request) and "
        "after the last.\n",
        "| Run | ECS: pending + running + stopping = total | run_task step | before RunTask "
        "| after STOPPED | step / ECS |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        t = r["run_task"]
        out.append(
            f"| {r['service']} | {t['pending']:.2f} + {t['running']:.2f} + {t['stopping']:.2f} = "
            f"{t['ecs']:.2f} s | {t['step']:.2f} s | {t['before']:.3f} s | {t['after']:.3f} s "
            f"| {t['ratio']:.3f} |"
        )
    out += [
        "",
        "| Run | http step | its requests | before first | between | after last | overhead |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        h = r["http"]
        out.append(
            f"| {r['service']} | {h['step']:.3f} s | {h['requests']:.3f} s | {h['before']:.3f} s "
            f"| {h['between']:.3f} s | {h['after']:.3f} s | +{h['overhead']:.3f} s |"
        )
    summaries = runs[0]["summaries"]
    out.append(
        "\nThe steps' own summaries (first run): "
        + "; ".join(f"{name}: {text}" for name, text in summaries.items())
        + "\n"
    )
    return out


async def main() -> int:
    """This measure alone, on its own emulator and Temporal dev server; prints the section and
    the targets, writes nothing outside the log directory."""
    cfg = Config.from_env()
    async with open_bench(cfg) as bench:
        results = {"steps": await measure(bench)}
        (bench.log_dir / "steps.json").write_text(json.dumps(results, indent=2))
    print("\n".join(section(results)))
    rows = targets(results)
    for name, value, ok in rows:
        print(f"{'met' if ok else 'NOT met'}: {name}: {value}")
    return 0 if all(ok for _, _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
