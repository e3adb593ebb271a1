"""`status` on a flooded run (issue 23; BENCH_MEASURES=flood, or `python -m bench.flood`): one
deployment waits at its gate while 10,000 refused signals arrive (BENCH_FLOOD_SIGNALS; 2,000 in
quick mode), with encrypted payloads as a production worker has them; then its worker, a
`python worker.py`, is restarted several times, and each fresh one is asked `status` once:

- **after its warm-up** (the product case): a worker that starts sends each open run of its
  queue the `warm_up` Update, which the run refuses (ecs_canary.warm_up): the worker replays
  the run once in the background and holds it, sticky. The bench waits for the worker's
  "Warmed up the open runs" line, then asks: the answer comes from the worker's cache.
- **before its warm-up** (a cold replay, measured apart): asked the moment the worker has
  started, the query finds the run on no worker's cache and not sticky, so the server hands the
  whole history over with it and the answer waits for a full replay (by the query itself, or by
  the warm-up it meets). The history is the current run's only: the deployment continues as
  new at its gate once its history is long (workflows.continue_at_gate), so 10,000 signals
  are spread over several short runs.

Before the restarts the bench waits for the run to continue as new (`continued_seconds`, after
the last signal was counted): a worker restarted before that replays the long history once.

Then the last worker is asked again (the run cached), and the gate is approved by an Update:
the run must succeed, a flood leaves the run decidable.

The signals are sent 50 at a time (`send_refused_signals`, shared with the e2e test): as fast
as the dev server takes them, which is what a flood is. While they keep coming, the server fails
the workflow task in flight each time too many arrived during it (FORCE_CLOSE_COMMAND), and the
next task carries every signal since the last completed one: a fresh worker replays each
workflow task's signals as one activation, up to all 10,000 in one (seen with a dev server on
a database file, where signals are slower to land).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from bench import deployments as d
from bench.harness import Bench, Config, open_bench
from bench.stack import Managed
from ecs_canary.attempt_log import MAX_REFUSED_ATTEMPTS
from ecs_canary.codec import KEY_FILE_ENV, PayloadKeys, new_key
from ecs_canary.models import DeploymentResult, DeploymentStatus
from ecs_canary.names import WORKFLOW_TYPE
from ecs_canary.temporal import encrypted_data_converter
from ecs_canary.unprocessed_update import execute_update
from workflows.continue_at_gate import CONTINUE_AT_GATE_AFTER_EVENTS

# The bound: a history with 10,000 refused signals answers `status` within a second.
STATUS_SECONDS = 1.0
# Signals in flight at once: fast, without a connection per signal.
IN_FLIGHT = 50
# A decision the run refuses by itself (a field no decision has), so no signal asks the worker.
REFUSED = {"when": "now"}
GATE = {"timeout_seconds": 3600}
# Seconds from the first signal until the run has counted them all, or its worker is wedged
# (15 s when it is not, on 2 cores).
REFUSED_WITHIN = 120
# Seconds from the last signal counted until the run continued as new (0.7-1.8 s measured).
CONTINUED_WITHIN = 60
# A query during the flood waits for the workflow task in flight.
QUERY_TIMEOUT = timedelta(seconds=30)
RESTARTS = 5
QUICK_RESTARTS = 3
# A fresh worker's warm-up of the one run, replay included (a few seconds at 10,000 signals).
WARMED_WITHIN = 120
WARMED_UP = "Warmed up the open runs"


async def send_refused_signals(handle: WorkflowHandle, count: int) -> None:
    """`count` `approve` signals the run refuses (each signed `by` p<number>), IN_FLIGHT at once."""
    sending = asyncio.Semaphore(IN_FLIGHT)

    async def one(number: int) -> None:
        async with sending:
            await handle.signal("approve", {"by": f"p{number}", **REFUSED})

    await asyncio.gather(*(one(number) for number in range(count)))


def attempts_shown(status: DeploymentStatus) -> int:
    """Every attempt the run counted: those it keeps and the refused ones it forgot."""
    return len(status.attempts) + status.refused_attempts_dropped


async def timed_status(handle: WorkflowHandle) -> tuple[float, DeploymentStatus]:
    started = time.perf_counter()
    status = await handle.query("status", result_type=DeploymentStatus)
    return time.perf_counter() - started, status


async def _until_all_refused(handle: WorkflowHandle, count: int) -> None:
    """Until the run has counted `count` attempts; a query may wait for the task in flight."""
    while True:
        try:
            status = await handle.query(
                "status", result_type=DeploymentStatus, rpc_timeout=QUERY_TIMEOUT
            )
            if attempts_shown(status) >= count:
                return
        except RPCError:
            pass
        await asyncio.sleep(0.5)


async def _until_continued(handle: WorkflowHandle) -> float:
    """Seconds until the deployment's current run has a short history again: it continues as
    new at its gate once the flood pauses (workflows.continue_at_gate). A worker restarted
    before that replays the long history once."""
    began = time.perf_counter()
    while (await handle.describe()).history_length >= CONTINUE_AT_GATE_AFTER_EVENTS:
        await asyncio.sleep(0.05)
    return time.perf_counter() - began


async def warm_up_seconds(worker: Managed) -> float:
    """Once the worker logged its warm-up of the open runs (one run: the flooded one, warmed),
    how long the warm-up took."""
    while True:
        for line in worker.log_path.read_text().splitlines():
            if WARMED_UP in line:
                summary = json.loads(line)
                assert summary["warmed"] == 1, summary
                return float(summary["seconds"])
        await asyncio.sleep(0.2)


async def measure(bench: Bench) -> dict[str, Any]:
    cfg = bench.config
    count = int(os.environ.get("BENCH_FLOOD_SIGNALS", "2000" if cfg.quick else "10000"))
    restarts = QUICK_RESTARTS if cfg.quick else RESTARTS
    key_file = bench.log_dir / "payload-keys.json"
    key_file.write_text(json.dumps({"active": "k1", "keys": {"k1": new_key()}}))
    settings = {KEY_FILE_ENV: str(key_file)}
    converter = encrypted_data_converter(PayloadKeys.load(key_file))
    client = await Client.connect(bench.temporal_address, data_converter=converter)
    service, task_queue = "flood", f"flood-{uuid.uuid4().hex[:8]}"
    bench.seed_services([service], cfg.delays[0])
    worker = bench.worker("flood-worker-0", task_queue, settings=settings)
    body = d.request(bench.seed, service, 1, cfg.poll, GATE)
    del body["desired_count"]  # the bench's own field
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        body,
        id=f"bench/flood/{task_queue}",
        task_queue=task_queue,
        result_type=DeploymentResult,
    )
    try:
        while not (await timed_status(handle))[1].gate_open:
            await asyncio.sleep(0.2)
        bench.say(f"flood: sending {count} refused signals")
        began = time.perf_counter()
        await send_refused_signals(handle, count)
        sent = time.perf_counter() - began
        wedged = False
        try:
            await asyncio.wait_for(_until_all_refused(handle, count), REFUSED_WITHIN)
        except TimeoutError:
            # The worker is wedged: an activation ran past the SDK's 2 s and the SDK could not
            # evict the run ("continually retrying eviction", in its log). Restarted, as its
            # supervisor would, a new worker replays the run and takes the rest.
            wedged = True
            bench.say(f"flood: the worker took no signal for {REFUSED_WITHIN} s; restarting it")
            worker.stop()
            worker = bench.worker("flood-worker-unwedged", task_queue, settings=settings)
            await asyncio.wait_for(_until_all_refused(handle, count), REFUSED_WITHIN)
        refused = time.perf_counter() - began
        continued = await asyncio.wait_for(_until_continued(handle), CONTINUED_WITHIN)
        cold: list[float] = []
        for restart in range(1, restarts + 1):
            worker.stop()
            worker = bench.worker(f"flood-worker-cold-{restart}", task_queue, settings=settings)
            seconds, status = await timed_status(handle)
            cold.append(seconds)
            bench.say(f"flood: status before fresh worker {restart}'s warm-up: {seconds:.3f} s")
            # Stopped only once its warm-up is done: a worker stopped while it works on the
            # run's task leaves that task to the server's workflow task timeout (10 s), which
            # the next worker's first query would wait out whatever the history.
            await asyncio.wait_for(warm_up_seconds(worker), WARMED_WITHIN)
        warmed: list[float] = []
        warm_ups: list[float] = []
        for restart in range(1, restarts + 1):
            worker.stop()
            worker = bench.worker(f"flood-worker-warm-{restart}", task_queue, settings=settings)
            warm_ups.append(await asyncio.wait_for(warm_up_seconds(worker), WARMED_WITHIN))
            seconds, status = await timed_status(handle)
            warmed.append(seconds)
            bench.say(
                f"flood: status after fresh worker {restart}'s warm-up ({warm_ups[-1]:.2f} s): "
                f"{seconds:.3f} s"
            )
        cached = (await timed_status(handle))[0]
        kept, dropped = len(status.attempts), status.refused_attempts_dropped
        await execute_update(handle, "approve", {"by": "alice"}, DeploymentStatus)
        outcome = (await handle.result()).outcome.value
        runs = await run_lengths(client, handle.id)
    finally:
        worker.stop()
    return {
        "signals": count,
        "sent_seconds": sent,
        "refused_seconds": refused,
        "continued_seconds": continued,
        "worker_wedged": wedged,
        "history_events": sum(runs),
        "run_history_events": runs,
        "warmed_seconds": warmed,
        "warm_up_seconds": warm_ups,
        "cold_seconds": cold,
        "cached_seconds": cached,
        "attempts_kept": kept,
        "attempts_dropped": dropped,
        "outcome": outcome,
    }


async def run_lengths(client: Client, workflow_id: str) -> list[int]:
    """The history length of each run of the flooded deployment, oldest first: it continues as
    new at its gate once its history is long (workflows.continue_at_gate)."""
    runs = [run async for run in client.list_workflows(f'WorkflowId = "{workflow_id}"')]
    return [run.history_length for run in sorted(runs, key=lambda run: run.start_time)]


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    flood = results.get("flood")
    if not flood:
        return []
    signals, warmed, cold = flood["signals"], flood["warmed_seconds"], flood["cold_seconds"]
    counted = flood["attempts_kept"] == MAX_REFUSED_ATTEMPTS
    counted = counted and flood["attempts_dropped"] == signals - MAX_REFUSED_ATTEMPTS
    return [
        (
            f"{signals:,} refused signals as fast as they come: the worker taking them is not "
            "wedged",
            "wedged (restarted)" if flood["worker_wedged"] else "not wedged",
            not flood["worker_wedged"],
        ),
        (
            f"`status` of {signals:,} refused signals < {STATUS_SECONDS:g} s, fresh worker after "
            "its warm-up (median)",
            f"{statistics.median(warmed):.3f} s ({min(warmed):.3f}-{max(warmed):.3f})",
            statistics.median(warmed) < STATUS_SECONDS,
        ),
        (
            f"`status` of {signals:,} refused signals < {STATUS_SECONDS:g} s, fresh worker before "
            "its warm-up (the slowest)",
            f"{max(cold):.3f} s ({min(cold):.3f}-{max(cold):.3f})",
            max(cold) < STATUS_SECONDS,
        ),
        (
            f"`status` of {signals:,} refused signals < {STATUS_SECONDS:g} s, same worker again",
            f"{flood['cached_seconds'] * 1000:.0f} ms",
            flood["cached_seconds"] < STATUS_SECONDS,
        ),
        (
            f"{signals:,} refused signals: the last {MAX_REFUSED_ATTEMPTS} kept, the rest "
            "counted, the gate then approved",
            f"{flood['attempts_kept']} kept, {flood['attempts_dropped']} counted, "
            f"{flood['outcome']}",
            counted and flood["outcome"] == "succeeded",
        ),
    ]


def section(results: dict[str, Any]) -> list[str]:
    flood = results.get("flood")
    if not flood:
        return []

    def listed(values: list[float]) -> str:
        return ", ".join(f"{seconds:.2f}" for seconds in values)

    return [
        "## A flood of refused signals\n",
        f"One deployment at its gate; {flood['signals']:,} `approve` signals it refuses by itself "
        f"(a field no decision has), {IN_FLIGHT} in flight at once, encrypted payloads: sent in "
        f"{flood['sent_seconds']:.1f} s, all refused {flood['refused_seconds']:.1f} s after the "
        f"first. The deployment continues as new at its gate once its history is long and the "
        f"signals pause (workflows.continue_at_gate): {len(flood['run_history_events'])} runs "
        f"of {', '.join(f'{n:,}' for n in flood['run_history_events'])} events, the last "
        f"continuation {flood['continued_seconds']:.2f} s after every signal was counted. Then "
        "`python worker.py` was restarted before each `status` below. A worker that starts "
        "warms its queue's open runs (README, \"A worker's warm-up\"): it replays each once in "
        "the background and holds it, so `status` after the warm-up is answered from its cache. "
        "A `status` sent the moment it starts waits for a replay of the current run's history "
        "(pages from the server, payloads decrypted, an activation per workflow task).\n",
        "- the worker that took them: "
        + (
            f"wedged (an activation past the SDK's 2 s, the run not evicted), restarted after "
            f"{REFUSED_WITHIN} s"
            if flood["worker_wedged"]
            else "not wedged"
        ),
        f"- `status` on a fresh worker after its warm-up: {listed(flood['warmed_seconds'])} s "
        f"(the warm-ups took {listed(flood['warm_up_seconds'])} s)",
        f"- `status` on a fresh worker before its warm-up (a cold replay): "
        f"{listed(flood['cold_seconds'])} s",
        f"- `status` on the same worker again: {flood['cached_seconds'] * 1000:.0f} ms",
        f"- then an `approve` Update: {flood['outcome']}",
        "",
    ]


async def main() -> int:
    cfg = Config.from_env()
    async with open_bench(cfg) as bench:
        bench.results["flood"] = await measure(bench)
        print(json.dumps(bench.results["flood"], indent=2))
        for name, value, ok in targets(bench.results):
            print(f"{'met' if ok else 'NOT met'}: {name}: {value}")
        (bench.log_dir / "flood.json").write_text(json.dumps(bench.results["flood"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
