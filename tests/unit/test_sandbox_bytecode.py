"""The worker writes its workflow modules' bytecode, so the sandbox does not compile them from
source for every run when PYTHONDONTWRITEBYTECODE is set."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from ecs_canary.sandbox import cache_workflow_bytecode

WORKFLOW_SOURCE = """
from temporalio import workflow


@workflow.defn
class Probe:
    @workflow.run
    async def run(self) -> str:
        return "ok"
"""


@pytest.fixture
def workflow_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "probe_workflows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probe.py").write_text(WORKFLOW_SOURCE)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in ("probe_workflows.probe", "probe_workflows"):
        sys.modules.pop(name, None)


def _pyc_matches_source(source: Path) -> bool:
    """A timestamp-checked .pyc that the import system will use instead of the source."""
    cached = Path(importlib.util.cache_from_source(str(source)))
    if not cached.exists():
        return False
    header = cached.read_bytes()[:16]
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    stat = os.stat(source)
    return header[:4] == importlib.util.MAGIC_NUMBER and (mtime, size) == (
        int(stat.st_mtime) & 0xFFFFFFFF,
        stat.st_size,
    )


def test_workflow_module_and_package_get_current_bytecode(workflow_package: Path) -> None:
    probe = importlib.import_module("probe_workflows.probe")
    assert not (workflow_package / "__pycache__").exists()  # the import wrote none

    cache_workflow_bytecode([probe.Probe])

    assert _pyc_matches_source(workflow_package / "probe.py")
    assert _pyc_matches_source(workflow_package / "__init__.py")


def test_unwritable_cache_does_not_stop_the_worker(workflow_package: Path) -> None:
    """Where no bytecode can be written (here a file where __pycache__ would go; in the image,
    a read-only tree) the worker starts anyway and imports fall back to the source."""
    probe = importlib.import_module("probe_workflows.probe")
    (workflow_package / "__pycache__").write_text("not a directory")

    cache_workflow_bytecode([probe.Probe])

    assert (workflow_package / "__pycache__").read_text() == "not a directory"
