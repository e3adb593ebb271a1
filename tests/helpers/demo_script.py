"""`scripts/demo.py`, the local stack's demo and example resolver, loaded as a module (it is a
script, not part of a package) so tests use its own code to fill the examples in and to set
up what they need. Imported by module (`from tests.helpers.demo_script import demo`)."""

from __future__ import annotations

import importlib.util
from typing import Any

from tests.helpers.processes import ROOT


def _load_demo() -> Any:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


demo = _load_demo()
