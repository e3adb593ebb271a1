"""Capturing the log lines a deployment writes (structlog's and stdlib's) and checking
their order."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

CONTEXT_KEYS = ("cluster", "service", "stage", "workflow_id")


class LogCapture(logging.Handler):
    """Collects the event text of every log record on the root logger while attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):
            entry = dict(record.msg)
        else:
            context = {k: v for k, v in vars(record).items() if k in CONTEXT_KEYS}
            entry = {"event": record.getMessage(), **context}
        self.records.append(entry)

    def attach(self) -> None:
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)

    def lines(self) -> list[str]:
        return [str(r.get("event", "")) for r in self.records]


def in_order(lines: list[str], expected: list[str]) -> bool:
    """True when each expected prefix appears in `lines`, in this order."""
    position = 0
    for prefix in expected:
        while position < len(lines) and not lines[position].startswith(prefix):
            position += 1
        if position == len(lines):
            return False
        position += 1
    return True


def logged_json(log_path: Path, prefix: str) -> list[dict[str, Any]]:
    """The JSON log lines of a `python worker.py` whose event starts with `prefix`."""
    if not log_path.exists():
        return []
    lines = []
    for raw in log_path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and str(line.get("event", "")).startswith(prefix):
            lines.append(line)
    return lines
