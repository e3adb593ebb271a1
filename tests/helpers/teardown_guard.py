"""A pytest plugin (`pytest_plugins` in tests/conftest.py) that bounds every teardown.

pytest-timeout stops its timer as soon as a test fails (its `pytest_exception_interact` hook,
meant for pdb), so a teardown that hangs after a failure would hold its xdist worker, and CI,
until CI's own limit. Seen once: a worker that could not evict a flooded run (the SDK retries
a failed eviction forever) never returned from its shutdown. faulthandler's timer bounds every
teardown instead: it prints every thread's stack and ends the process, and
`--max-worker-restart=0` then ends the run.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from collections.abc import Iterator

import pytest

# Where the stacks go: the process's own standard error, taken while pytest is not capturing
# it (as pytest's faulthandler plugin does), since a teardown's output is captured.
_STDERR = pytest.StashKey[int]()

# Teardowns take seconds (stopping a worker, replaying the finished runs); one that takes this
# long is stuck. TEARDOWN_LIMIT_SECONDS in the environment changes it (this plugin's own test).
DEFAULT_LIMIT_SECONDS = 120.0


def limit_seconds() -> float:
    return float(os.environ.get("TEARDOWN_LIMIT_SECONDS", DEFAULT_LIMIT_SECONDS))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STDERR] = os.dup(sys.__stderr__.fileno() if sys.__stderr__ else 2)


def pytest_unconfigure(config: pytest.Config) -> None:
    os.close(config.stash[_STDERR])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    faulthandler.dump_traceback_later(limit_seconds(), exit=True, file=item.config.stash[_STDERR])
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
