"""Ending a command's process with the exit code the command chose.

The SDK's native runtime can crash at interpreter exit after the work is done: a fatal
`PyGILState_Release` while its threads are torn down. The process then dies by SIGABRT instead
of exiting with its own code, and the worker writes a line that is not JSON into a log kept as
JSON lines. So `starter.py` and `worker.py` end through `exit_with`: buffered output and log
handlers are flushed, then the process leaves without tearing the interpreter down.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn


def exit_with(code: int) -> NoReturn:
    """Flush what the process wrote, then exit with `code` at once."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_code_of(stopped: SystemExit) -> int:
    """The code a `SystemExit` asks for, as the interpreter would exit with it: a message is
    printed to standard error and exits 1."""
    if stopped.code is None or isinstance(stopped.code, int):
        return stopped.code or 0
    print(stopped.code, file=sys.stderr)
    return 1


def run_then_exit(command: Callable[[], None]) -> NoReturn:
    """Run a command's main function and exit with the code it ended with."""
    try:
        command()
    except SystemExit as stopped:
        exit_with(exit_code_of(stopped))
    except KeyboardInterrupt:
        exit_with(130)
    except BaseException:
        traceback.print_exc()
        exit_with(1)
    exit_with(0)
