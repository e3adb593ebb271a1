"""What every `python starter.py ...` imports before its command runs: the tests start dozens
of starters, and a person's `status` or `approve` should not wait on libraries only other
commands use. Each is imported where it is needed: botocore by the first check of a request
(ecs_canary/aws_shapes.py), PyJWT and cryptography's key types by `keygen` and `--key`
(cli/approver_keys.py), rich by the commands that follow a run (cli/progress.py), and the codec
server by `codec-server` (cli/codec_options.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT

# Prints the modules loaded once `starter.py` is imported, as it is before any command runs.
LOADED_BY_THE_STARTER = "import sys, starter; print('\\n'.join(sys.modules))"
ONLY_FOR_SOME_COMMANDS = ("botocore", "jwt", "rich", "cli.approver_keys", "cli.codec_server")


def test_the_starter_imports_what_only_some_commands_need_only_for_them():
    done = subprocess.run(
        [sys.executable, "-c", LOADED_BY_THE_STARTER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(done.stdout.split())
    assert "cli.commands" in loaded  # what every command shares is there
    for module in ONLY_FOR_SOME_COMMANDS:
        assert module not in loaded, f"{module} is imported by every command"
