"""Cancellation under load (issue 21): many deployments at once on one worker while a driver
cancels a share of the runs at random moments and makes the emulator stall DescribeServices
for longer than a wait's heartbeat timeout; nothing is killed.

Every run must close: a cancelled one with its canary deleted, the others succeeded, and no
canary left behind. A run still open at the end of its time is a hang. The worker's watchdog
(ecs_canary.watchdog) measures how late its event loop answered; its log gives the longest.

`chaos` is one seed of it, shared by the e2e test (tests/e2e/test_cancellation_under_load.py)
and `make bench` (`measure`, BENCH_MEASURES=cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.aws import DESCRIBE_SERVICES_BATCH
from bench import deployments as d
from ecs_canary.models import DeploymentStatus
from ecs_canary.watchdog import LATE_SECONDS

# The gate stays open a moment, so that cancellations land in every stage, the gate included.
GATE = {"timeout_seconds": 2, "on_timeout": "approve"}
# A wait's heartbeat timeout is 10 s at short poll intervals (workflows/ecs_calls.py): a
# DescribeServices held back longer makes the wait that sent it miss its heartbeat.
STALL_ANSWER_SECONDS = 14.0


@dataclass(frozen=True)
class Plan:
    """One seed: `count` deployments started in a burst; `cancels` of them cancelled at random
    moments in the first `cancel_within` seconds; DescribeServices answered `stall_answer`
    seconds late from `stall_at` for `stall_for` seconds; a run open after `run_timeout` hangs."""

    seed: int
    count: int
    cancels: int
    cancel_within: float
    stall_at: float
    stall_for: float
    stall_answer: float = STALL_ANSWER_SECONDS
    run_timeout: float = 600.0


@dataclass
class Outcome:
    seed: int
    count: int
    cancels_injected: int
    cancelled: int = 0
    succeeded: int = 0
    hangs: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    heartbeat_timeouts: int = 0
    retried_attempts: int = 0
    longest_stall_seconds: float | None = None
    late_answers: int = 0

    @property
    def clean(self) -> bool:
        """Every run closed as it should, and the event loop never answered late."""
        return not self.hangs and not self.problems and self.late_answers == 0


async def chaos(
    client: Client,
    task_queue: str,
    ecs: Any,
    admin: Any,
    seed_info: dict[str, Any],
    services: list[str],
    plan: Plan,
    poll: float,
    desired: int = 1,
) -> Outcome:
    """Deploy `services` (already running, see deployments.seed_services) through the worker
    polling `task_queue`, with the plan's cancellations and stall; `admin`: the emulator's
    EmulatorAdmin. Leaves the emulator answering at once again, whatever happens."""
    rng = random.Random(plan.seed)
    ids = {service: f"chaos-{plan.seed}-{uuid.uuid4().hex[:6]}/{service}" for service in services}
    doomed = set(rng.sample(services, plan.cancels))
    jobs = {
        service: asyncio.ensure_future(
            d.run_ecs_canary(
                client,
                task_queue,
                d.request(seed_info, service, desired, poll, GATE),
                workflow_id=ids[service],
            )
        )
        for service in services
    }
    drivers = [
        asyncio.ensure_future(_cancel_at(client, ids[s], rng.uniform(0, plan.cancel_within)))
        for s in sorted(doomed)
    ]
    drivers.append(asyncio.ensure_future(_stall(admin, plan)))
    try:
        done, pending = await asyncio.wait(jobs.values(), timeout=plan.run_timeout)
        await asyncio.gather(*drivers)
    finally:
        for driver in drivers:
            driver.cancel()
        await asyncio.to_thread(admin.settings, describe_services_delay_seconds=0)
    outcome = Outcome(plan.seed, plan.count, cancels_injected=len(doomed))
    for service, job in jobs.items():
        if job in pending:
            job.cancel()
            outcome.hangs.append(service)
            await _terminate(client, ids[service])
            continue
        run = job.result()
        if not run.outcome:  # a cancelled run's error carries no result: its status says
            status = await client.get_workflow_handle(ids[service]).query(
                "status", result_type=DeploymentStatus
            )
            run.outcome = status.outcome.value if status.outcome else ""
        problem = await asyncio.to_thread(_check, ecs, seed_info, run, service in doomed, desired)
        if problem:
            outcome.problems[service] = problem
        outcome.cancelled += run.outcome == "cancelled"
        outcome.succeeded += run.outcome == "succeeded"
        summary = d.activity_summary(await d.fetch_history(client, ids[service]))
        outcome.heartbeat_timeouts += summary["heartbeat_timeouts"]
        outcome.retried_attempts += summary["retried_attempts"]
    left = await asyncio.to_thread(canaries_left, ecs, seed_info["cluster"], services)
    outcome.problems.update({canary: "canary left behind" for canary in left})
    return outcome


async def _cancel_at(client: Client, workflow_id: str, after: float) -> None:
    """Cancel the run `after` seconds from now (once its start reached the server)."""
    await asyncio.sleep(after)
    while True:
        try:
            await client.get_workflow_handle(workflow_id).cancel()
            return
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.1)


async def _stall(admin: Any, plan: Plan) -> None:
    await asyncio.sleep(plan.stall_at)
    await asyncio.to_thread(admin.settings, describe_services_delay_seconds=plan.stall_answer)
    await asyncio.sleep(plan.stall_for)
    await asyncio.to_thread(admin.settings, describe_services_delay_seconds=0)


async def _terminate(client: Client, workflow_id: str) -> None:
    with contextlib.suppress(RPCError):  # closed meanwhile
        await client.get_workflow_handle(workflow_id).terminate("hung in the cancellation chaos")


def _check(ecs: Any, seed_info: dict[str, Any], run: d.Run, doomed: bool, desired: int) -> str:
    """What is wrong with a closed run ("" if nothing): a cancelled one must have deleted its
    canary, every other must have succeeded (a run cancelled once it had may have too)."""
    cluster = seed_info["cluster"]
    if run.outcome == "cancelled" and doomed:
        left = canaries_left(ecs, cluster, [run.service])
        return "cancelled without deleting its canary" if left else ""
    if run.outcome != "succeeded":
        return f"outcome {run.outcome or 'unknown'}"
    return d.verify_deployed(ecs, cluster, run.service, run.task_definition_arn, desired) or ""


def canaries_left(ecs: Any, cluster: str, services: list[str]) -> list[str]:
    """Canary services still ACTIVE or DRAINING."""
    canaries = [f"{service}Canary" for service in services]
    left = []
    for start in range(0, len(canaries), DESCRIBE_SERVICES_BATCH):
        batch = canaries[start : start + DESCRIBE_SERVICES_BATCH]
        found = ecs.describe_services(cluster=cluster, services=batch)["services"]
        left += [s["serviceName"] for s in found if s["status"] != "INACTIVE"]
    return left


def event_loop_stalls(log_path: Path) -> tuple[float | None, int]:
    """From a stopped worker's JSON log: the longest event-loop stall its watchdog measured,
    and how many answers came later than LATE_SECONDS."""
    longest, late = None, 0
    for line in log_path.read_text().splitlines():
        if "Event loop" not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "Event loop answered late":
            late += 1
        if "longest_stall_seconds" in entry:
            longest = max(longest or 0.0, float(entry["longest_stall_seconds"]))
    return longest, late


# --- make bench -----------------------------------------------------------------------------


def bench_plans(quick: bool) -> list[Plan]:
    """20 seeds of 200 deployments with 50 cancelled (issue 21); BENCH_QUICK: 2 seeds of 40."""
    seeds, count = (2, 40) if quick else (20, 200)
    return [
        Plan(
            seed=seed,
            count=count,
            cancels=count // 4,
            cancel_within=30.0,
            stall_at=5.0,
            stall_for=20.0,
        )
        for seed in range(seeds)
    ]


async def measure(bench: Any) -> list[dict[str, Any]]:
    """Each plan on a fresh worker and a freshly seeded emulator."""
    cfg = bench.config
    results = []
    for plan in bench_plans(cfg.quick):
        bench.seed = bench.admin.reset()
        services = [f"x{plan.seed}n{i:03d}" for i in range(plan.count)]
        bench.seed_services(services, cfg.concurrency_delay)
        task_queue = f"bench-cancel-{plan.seed}-{uuid.uuid4().hex[:6]}"
        worker = bench.worker(f"worker-cancel-{plan.seed}", task_queue)
        try:
            outcome = await chaos(
                bench.client,
                task_queue,
                bench.ecs,
                bench.admin,
                bench.seed,
                services,
                plan,
                cfg.poll,
                cfg.desired,
            )
        finally:
            worker.stop()
        outcome.longest_stall_seconds, outcome.late_answers = event_loop_stalls(worker.log_path)
        bench.say(
            f"cancellation seed {plan.seed}: {plan.count} runs, {outcome.cancels_injected} "
            f"cancels ({outcome.cancelled} cancelled), {len(outcome.hangs)} hangs, "
            f"{len(outcome.problems)} problems, {outcome.heartbeat_timeouts} heartbeat timeouts, "
            f"longest event-loop stall {outcome.longest_stall_seconds} s"
        )
        results.append(asdict(outcome))
    return results


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    seeds = results.get("cancellation") or []
    if not seeds:
        return []
    hangs = sum(len(s["hangs"]) for s in seeds)
    problems = sum(len(s["problems"]) for s in seeds)
    longest = max((s["longest_stall_seconds"] or 0.0) for s in seeds)
    return [
        (f"Cancellation under load, {len(seeds)} seeds: 0 hangs", str(hangs), hangs == 0),
        (
            "Cancellation under load: every run closed right, no canary left",
            f"{problems} problems",
            problems == 0,
        ),
        (
            f"Cancellation under load: event loop answers within {LATE_SECONDS:g} s",
            f"longest stall {longest:.2f} s",
            longest <= LATE_SECONDS,
        ),
    ]


def section(results: dict[str, Any]) -> list[str]:
    seeds = results.get("cancellation") or []
    if not seeds:
        return []
    out = [
        "## Cancellation under load\n",
        f"{len(seeds)} seeds. Each: {seeds[0]['count']} deployments started at once (a burst of "
        "`start_workflow` calls) on one fresh `python worker.py`; a quarter of them cancelled "
        "at random moments in the first 30 s; from 5 s on, for 20 s, the emulator answers "
        f"every DescribeServices {STALL_ANSWER_SECONDS:g} s late "
        "(`describe_services_delay_seconds`), longer than a wait's 10 s heartbeat timeout. "
        "Nothing is killed. A hang is a run still open after 10 minutes. Heartbeat timeouts: "
        "attempts that followed one, from the histories (a lower bound: a history keeps an "
        "attempt's last failure only). The longest event-loop stall is the worker watchdog's "
        "(`ecs_canary/watchdog.py`, a ping every 0.25 s). How the heartbeat timeouts were "
        'chosen: README, "Cancellation, heartbeats and the watchdog".\n',
        "| Seed | Runs | Cancels injected | Cancelled | Succeeded | Hangs | Problems "
        "| Heartbeat timeouts | Retried attempts | Longest event-loop stall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in seeds:
        stall = s["longest_stall_seconds"]
        out.append(
            f"| {s['seed']} | {s['count']} | {s['cancels_injected']} | {s['cancelled']} "
            f"| {s['succeeded']} | {len(s['hangs'])} | {len(s['problems'])} "
            f"| {s['heartbeat_timeouts']} | {s['retried_attempts']} "
            f"| {'?' if stall is None else f'{stall:.2f} s'} |"
        )
    out.append("")
    return out
