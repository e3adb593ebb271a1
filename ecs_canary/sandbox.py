"""Workflow module bytecode for Temporal's sandbox.

The sandbox executes a workflow's module afresh for every run it starts or replays. Python
loads that module from its cached bytecode when there is one; without it (PYTHONDONTWRITEBYTECODE,
common in containers) every run compiles the module from source, which at a hundred deployments
starting at once costs the worker more CPU than all their activities.
"""

from __future__ import annotations

import py_compile
import sys
from collections.abc import Iterable

import structlog


def cache_workflow_bytecode(workflow_classes: Iterable[type]) -> None:
    """Write the current .pyc of each workflow's module and its packages, where the source
    tree is writable; elsewhere (a read-only image) bytecode compiled at build time serves."""
    log = structlog.get_logger("ecs_canary.sandbox")
    for cls in workflow_classes:
        parts = cls.__module__.split(".")
        for depth in range(1, len(parts) + 1):
            source = getattr(sys.modules[".".join(parts[:depth])], "__file__", None)
            if not source or not source.endswith(".py"):
                continue
            try:
                py_compile.compile(source, doraise=True)
            except (OSError, py_compile.PyCompileError) as err:
                log.debug("Workflow bytecode not cached", source=source, error=str(err))
