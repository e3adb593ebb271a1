"""The suite's teardown bound (tests/helpers/teardown_guard.py): a teardown that hangs after its
test failed, which pytest-timeout no longer watches, ends the pytest process with every
thread's stack instead of holding it for good."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.helpers import ROOT

HANGING_AFTER_A_FAILURE = textwrap.dedent(
    """
    import threading

    import pytest


    @pytest.fixture
    def stuck_shutdown():
        yield
        threading.Event().wait()  # a worker's shutdown that never returns


    def test_fails(stuck_shutdown):
        assert False
    """
)


def test_a_teardown_that_hangs_after_a_failure_ends_the_process(tmp_path: Path):
    test_file = tmp_path / "test_stuck.py"
    test_file.write_text(HANGING_AFTER_A_FAILURE)
    plugin_and_limits = ["-p", "tests.helpers.teardown_guard", "-o", "timeout=300"]
    started = time.monotonic()
    ended = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugin_and_limits, str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TEARDOWN_LIMIT_SECONDS": "1"},
        cwd=ROOT,
    )

    assert ended.returncode != 0
    assert "Timeout (0:00:01)!" in ended.stderr
    assert "in stuck_shutdown" in ended.stderr  # the stack names the teardown that hung
    assert time.monotonic() - started < 60
