"""What every test layer needs: the project's logging, the `logs` capture fixture, and how the
tests share out over pytest-xdist's workers (`make test` runs them in parallel).

The end-to-end fixtures (ECS emulator, Temporal dev server, worker) are in
`tests/e2e/conftest.py`, so the unit and workflow layers start neither.

In parallel, every worker is a test session of its own: its session fixtures (emulator, dev
server, time-skipping server) are its own, on free ports, with its own `tmp_path` tree, so a
test written for the standard fixtures needs nothing else to run beside the others. The
workers take one test at a time (`--dist loadgroup`), except that the tests of a module
sharing a module-scoped fixture (a local stack, an encrypted server) go to one worker, which
starts that fixture once; the `slow` tests go first, so that no long test starts last.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import settings

from ecs_canary.logs import configure_logging
from tests.helpers import LogCapture
from tests.helpers.fuzzing import FAST_PROFILE

# Every teardown is bounded, a failed test's too (tests/helpers/teardown_guard.py says why).
pytest_plugins = ["tests.helpers.teardown_guard"]

# Registered before Hypothesis's plugin loads the profile that `make test-fast` names.
settings.register_profile(FAST_PROFILE)

# The fixture scopes that outlive a test but not a worker: their tests share one worker.
SHARED_SCOPES = frozenset({"class", "module", "package"})


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging()


# Collecting the tests imports botocore, altair, the SDK and, for the end-to-end tests, moto: a
# few hundred thousand objects that live as long as the worker. The garbage collector's full
# passes walked them all, 0.2-0.9 s each, eight times per xdist worker before its first test.
# None run while the tests are collected; then all that is frozen, out of every later pass.
# Frozen uncollected, the collection's own garbage (tens of MB) stays: collecting it took a
# second per worker.
@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Iterator[None]:
    gc.disable()
    try:
        return (yield)
    finally:
        gc.freeze()
        gc.enable()


# As it unconfigures, pytest's unraisable-exception plugin runs full collections (to report an
# exception a finalizer raises) that walked all a worker's tests left behind: about 2 s of each
# xdist worker's last moments (py-spy), when the run waits for its slowest worker. The heap is
# frozen first; a finalizer of that garbage runs at the process's exit, if at all.
@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure() -> None:
    gc.freeze()


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    capture.attach()
    yield capture
    capture.detach()


# --- Sharing out over xdist's workers ---------------------------------------------------------


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests first (a stable sort: every worker must collect the same order), and
    one xdist group per module whose tests share a fixture wider than a test."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        if _uses_a_shared_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On a worker of `--dist loadgroup`, xdist tells its scheduler a test's group by adding it
    to the test's id. A pytest whose ids do not take that (9.2 with xdist 3.8, pytest-xdist#1386)
    spreads a group over every worker without a word, and each then starts the module's shared
    fixture (a local stack, an encrypted server) of its own: such a test fails instead."""
    grouped = item.get_closest_marker("xdist_group") is not None
    if grouped and getattr(item.config.option, "loadgroup", False) and "@" not in item.nodeid:
        pytest.fail(
            "pytest-xdist did not take this test's xdist_group, so its module's shared fixture "
            "would start on several workers: check the pytest and pytest-xdist versions "
            "(pytest-xdist#1386)",
            pytrace=False,
        )


def _uses_a_shared_fixture(item: pytest.Item) -> bool:
    fixture_info = getattr(item, "_fixtureinfo", None)  # pytest's, on every test function
    if fixture_info is None:
        return False
    definitions = fixture_info.name2fixturedefs.values()
    return any(fixture.scope in SHARED_SCOPES for defs in definitions for fixture in defs)


# --- The replay tally over every worker -------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand this worker's replay tally to the controller."""
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        from tests.helpers import TALLY

        worker_output["replay_tally"] = asdict(TALLY)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: the controller, as each worker ends
def pytest_testnodedown(node: Any, error: Any) -> None:
    from tests.helpers import TALLY

    TALLY.add(**getattr(node, "workeroutput", {}).get("replay_tally", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Every finished run of every test, on whichever worker, was replayed in its test's
    teardown (the `runs` fixture); this line sums them up."""
    from tests.helpers import TALLY

    if TALLY.sources:
        terminalreporter.write_line(
            f"replay of finished runs: {TALLY.histories} histories replayed deterministically "
            f"on today's workflow code ({TALLY.sources} replays: test teardowns, in-test checks)"
        )
