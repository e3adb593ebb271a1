"""Load: where the worker's CPU goes (py-spy), and many workers under one shared ECS budget.

py-spy samples the worker's Python stacks from outside (`--nonblocking`: the worker is never
paused), so the profile costs the worker nothing but a little of the machine's CPU. Only the
stacks of threads that were running count: py-spy leaves idle threads out. The report keeps
the functions with the most samples, by own time (the frame on top) and by total time (the
frame anywhere on the stack), as shares of all samples.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import Managed

PY_SPY = Path(sys.executable).parent / "py-spy"
SAMPLES_PER_SECOND = 100
# Frames at the bottom of every worker stack (thread and event loop plumbing): in the total-time
# ranking they would only say "everything ran in a thread or on the event loop".
_FRAMEWORK_FILES = (
    "(threading.py)",
    "(concurrent/futures/thread.py)",
    "(asyncio/runners.py)",
    "(asyncio/base_events.py)",
    "(asyncio/events.py)",
    "(worker.py)",
)


@dataclass
class Profile:
    """Sample counts of one run, by function (`name (file:line)` without the line)."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)

    def top(self, kind: str, count: int) -> list[tuple[str, float]]:
        """The `count` functions with the most samples; for total time, without the frames
        every stack of a thread or of the event loop starts with."""
        counts = self.own if kind == "own" else self.total
        ranked = [
            (name, n / max(self.samples, 1))
            for name, n in counts.most_common()
            if kind == "own" or not name.endswith(_FRAMEWORK_FILES)
        ]
        return ranked[:count]


def available() -> bool:
    return PY_SPY.exists() or shutil.which("py-spy") is not None


class Recording:
    """`py-spy record` attached to `pid` until stopped; the raw (collapsed) stacks go to `out`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self._process = subprocess.Popen(
            [
                str(PY_SPY if PY_SPY.exists() else "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(SAMPLES_PER_SECOND),
                "--nonblocking",
                "--gil",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> Profile:
        """SIGINT makes py-spy write what it sampled and exit."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        return read_collapsed(self.out) if self.out.exists() else Profile()


def _function(frame: str) -> str:
    """`handle (temporalio/worker/_workflow.py:123)` -> `handle (temporalio/worker/_workflow.py)`:
    a function's samples are summed over its lines."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def read_collapsed(path: Path) -> Profile:
    """py-spy's raw format: one line per distinct stack, `frame;frame;...;frame count`, outermost
    frame first."""
    profile = Profile()
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";")]
        profile.samples += count
        profile.own[frames[-1]] += count
        for name in set(frames):
            profile.total[name] += count
    return profile


# --- Workers sharing one budget ----------------------------------------------------------------


async def shares_settled(workers: list[Managed], count: int, timeout: float = 60) -> None:
    """Until every worker has logged its share of a budget split `count` ways."""
    deadline = time.monotonic() + timeout
    while not all(_latest_share(w.log_path) == count for w in workers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not agree on {count} shares; see their logs")
        await asyncio.sleep(0.2)


def _latest_share(log_path: Path) -> int | None:
    workers = None
    for line in log_path.read_text().splitlines():
        if "ECS call budget shared" in line:
            workers = json.loads(line).get("workers")
    return workers


# --- Report ----------------------------------------------------------------------------------

LOAD_COUNT = 300


def targets(cfg: Any, results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Issue 17's targets: 300 at once on one worker, CPU per deployment, a shared budget."""
    rows: list[tuple[str, str, bool]] = []
    conc = results.get("concurrency", [])
    lone = next((r for r in conc if r["count"] == 1), None)
    top = next((r for r in conc if r["count"] == LOAD_COUNT), None)
    if top and lone:
        every = [r for runs in results.get("concurrency_rounds", [conc]) for r in runs]
        tops = [r for r in every if r["count"] == LOAD_COUNT]
        ok, tried = sum(r["succeeded"] for r in tops), sum(r["count"] for r in tops)
        retried = sum(r["retried_activity_attempts"] for r in tops)
        heartbeat_timeouts = sum(r.get("heartbeat_timeouts", 0) for r in tops)
        ratio = top["p95"] / lone["p50"]
        per_deployment = top["cpu_seconds"] / top["count"]
        rows += [
            (f"{LOAD_COUNT} concurrent, one worker: all succeed", f"{ok}/{tried}", ok == tried),
            (
                f"{LOAD_COUNT} concurrent, one worker: 0 retried attempts",
                f"{retried} ({heartbeat_timeouts} after a heartbeat timeout)",
                retried == 0,
            ),
            (
                f"{LOAD_COUNT} concurrent, one worker: p95 wall <= 3x a lone deployment's",
                f"{top['p95']:.2f} s / {lone['p50']:.2f} s = {ratio:.2f}x",
                ratio <= 3,
            ),
            (
                f"{LOAD_COUNT} concurrent, one worker: peak RSS <= 300 MB",
                f"{top['peak_rss_mib'] * 1.048576:.0f} MB",
                top["peak_rss_mib"] * 1.048576 <= 300,
            ),
            (
                f"Worker CPU per deployment <= 0.08 s ({LOAD_COUNT} concurrent)",
                f"{top['cpu_seconds']:.1f} s / {top['count']} = {per_deployment:.3f} s",
                per_deployment <= 0.08,
            ),
        ]
    shared = results.get("shared")
    if shared:
        busiest = shared["calls"]["max_per_second"]
        rows.append(
            (
                f"{shared['workers']} workers x {shared['count'] // shared['workers']}, one shared "
                f"budget: busiest second <= {cfg.budget:g} calls",
                f"max {busiest}/s ({shared['succeeded']}/{shared['count']} succeeded)",
                busiest <= cfg.budget and shared["succeeded"] == shared["count"],
            )
        )
    return rows


def shared_note(cfg: Any, shared: dict[str, Any]) -> str:
    return (
        f"The last row: {shared['count']} deployments on {shared['workers']} `python worker.py` "
        f"processes on one task queue with `ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND="
        f"{cfg.budget:g}`: each takes an equal share of that one budget "
        "(activities/shared_budget.py). Its CPU is the three workers' together, its RSS the "
        "first worker's.\n"
    )


def profile_section(results: dict[str, Any]) -> list[str]:
    runs = results.get("profiles") or []
    if not runs:
        return []
    out = [
        "## 7. Where the worker's CPU goes\n",
        "`py-spy record --gil --nonblocking --rate "
        f"{SAMPLES_PER_SECOND}` attached to the worker during one extra run per N (not the timed "
        "rounds). `--gil` keeps the samples of the thread holding the GIL: Python's own CPU. The "
        "SDK's core (Rust) threads are not sampled; the CPU column of measure 4 includes them. "
        "Shares of all samples; own = the function on top of the stack, total = anywhere on "
        "it.\n",
    ]
    for run in runs:
        profile = run["profile"]
        if not profile:
            continue
        out += [
            f"**{run['count']} concurrent**: {profile['samples']} samples; worker CPU "
            f"{run['cpu_seconds']:.1f} s ({run['cpu_seconds'] / run['count']:.3f} s per "
            f"deployment), p95 {run['p95']:.2f} s, {run['retried_activity_attempts']} retried "
            "attempts.\n",
            "| Own | Function | | Total | Function |",
            "|---|---|---|---|---|",
        ]
        own, total = profile["own"][:15], profile["total"][:15]
        for (own_name, own_share), (total_name, total_share) in zip(own, total, strict=False):
            out.append(f"| {own_share:.1%} | `{own_name}` | | {total_share:.1%} | `{total_name}` |")
        out.append("")
    return out
