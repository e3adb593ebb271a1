"""How a command fails: one line on stderr and an exit status.

The exit statuses are a public contract (docs/starter.md, "Exit codes"): scripts and CI jobs
branch on them, so they are decided here and nowhere else in the CLI. `starter.py` turns a
`CliError` into its line and status.
"""

from __future__ import annotations

from cli.format import one_line
from ecs_canary.models import DeploymentResult, Outcome

# Outcomes that end `watch` / `deploy --wait` with status 0: a rejection is the gate working.
OK_OUTCOMES = (Outcome.SUCCEEDED, Outcome.REJECTED)


class CliError(Exception):
    """Ends the command: `message` goes to stderr on one line, `code` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def exit_code(result: DeploymentResult | None, error: str | None) -> tuple[int, str | None]:
    """0 for succeeded or rejected; otherwise 1 and the one-line reason."""
    if result is not None and result.outcome in OK_OUTCOMES:
        return 0, None
    if result is not None:
        return 1, f"deployment {result.outcome.value}: {one_line(result.reason or error or '')}"
    return 1, f"deployment did not complete: {error or 'unknown reason'}"
