"""The worker's collector settings (ecs_canary.replay_cost), in a fresh interpreter each: a
burst of short-lived cycles, as a worker holding hundreds of runs makes, is collected young,
with no full collection of everything the worker keeps."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

# Counts the full collections a burst of short-lived cycles triggers, while a little is kept
# (a worker's cached runs), after the worker's start settings or with Python's own.
_BURST = """
import gc, sys
from ecs_canary.replay_cost import freeze_startup_heap
if sys.argv[1] == "worker":
    freeze_startup_heap()
kept = []
before = gc.get_stats()[2]["collections"]
for i in range(300_000):
    first = {}
    first["second"] = [first]
    if i % 100 == 0:
        kept.append([i])
print(gc.get_stats()[2]["collections"] - before, gc.get_freeze_count() > 0)
"""


def _full_collections(settings: str) -> tuple[int, bool]:
    done = subprocess.run(
        [sys.executable, "-c", _BURST, settings],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    full, frozen = done.stdout.split()
    return int(full), frozen == "True"


def test_a_burst_of_short_lived_cycles_makes_no_full_collection_on_a_worker():
    assert _full_collections("worker") == (0, True)


def test_with_pythons_own_settings_the_same_burst_makes_full_collections():
    full, frozen = _full_collections("python")
    assert full >= 1 and not frozen
