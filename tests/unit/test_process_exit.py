"""A command's process exits with the code it chose, whatever the interpreter's teardown would
have done (ecs_canary.process_exit)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ecs_canary.process_exit import exit_code_of


@pytest.mark.parametrize(
    ("code", "exits", "says"),
    [(None, 0, ""), (3, 3, ""), ("worker: bad key", 1, "worker: bad key")],
)
def test_a_system_exit_gives_the_code_the_interpreter_would(code, exits, says, capsys):
    assert exit_code_of(SystemExit(code)) == exits
    assert capsys.readouterr().err.strip() == says


@pytest.mark.parametrize(
    ("body", "exits", "says"),
    [
        ("print('done')", 0, ""),
        ("raise SystemExit('worker: no policy file')", 1, "worker: no policy file"),
        ("raise KeyboardInterrupt", 130, ""),
        ("raise ValueError('a bug')", 1, "ValueError: a bug"),
    ],
)
def test_a_command_exits_with_its_code_and_its_output_written(body, exits, says):
    script = (
        "import logging, sys\n"
        "from ecs_canary.process_exit import run_then_exit\n"
        "def command():\n"
        "    logging.basicConfig(stream=sys.stdout)\n"
        "    logging.getLogger('x').warning('logged before the end')\n"
        f"    {body}\n"
        "run_then_exit(command)\n"
    )
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert ended.returncode == exits
    assert "logged before the end" in ended.stdout
    assert says in ended.stderr
