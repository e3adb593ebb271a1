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
kill,steps,analysis,cancellation,flood,train), BENCH_FLOOD_SIGNALS (the flood measure's
signals, 10,000; 2,000 in quick mode), BENCH_TRAIN_WAVES (the release train's wave sizes,
"10,90,300,600"; "2,3,5" in quick mode).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from bench import (
    analysis,
    analysis_e2e,
    cancellation,
    concurrency,
    flood,
    report,
    single,
    steps,
    train,
)
from bench.harness import Config, open_bench
from bench.stack import ROOT

ALL_MEASURES = (
    "single,history,concurrency,shared,profile,kill,steps,analysis,cancellation,flood,train"
)


async def main() -> int:
    cfg = Config.from_env()
    output = Path(os.environ.get("BENCH_OUTPUT", ROOT / "BENCHMARKS.md"))
    command = "BENCH_QUICK=1 make bench" if cfg.quick else "make bench"
    began = time.time()
    async with open_bench(cfg) as bench:
        measures = os.environ.get("BENCH_MEASURES", ALL_MEASURES).split(",")
        if "single" in measures:
            await single.single_deployments(bench)
        if "history" in measures:
            await single.histories(bench)
        if "concurrency" in measures:
            await concurrency.concurrency(bench)
        if "shared" in measures:
            await concurrency.shared_budget(bench)
        if "profile" in measures:
            await concurrency.profiles(bench)
        if "kill" in measures:
            await concurrency.kill_test(bench)
        if "steps" in measures:
            bench.results["steps"] = await steps.measure(bench)
        if "analysis" in measures:
            bench.results["analysis"] = analysis.measure()
            bench.results["analysis_e2e"] = await analysis_e2e.measure(bench)
        if "cancellation" in measures:
            bench.results["cancellation"] = await cancellation.measure(bench)
        if "flood" in measures:
            bench.results["flood"] = await flood.measure(bench)
        if "train" in measures:
            bench.results["train"] = await train.measure(bench)
        bench.results["elapsed_seconds"] = time.time() - began
        (bench.log_dir / "results.json").write_text(
            json.dumps(bench.results, indent=2, default=str)
        )
        output.write_text(report.render(cfg, bench.results, command))
        print(f"[bench] wrote {output} in {time.time() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
