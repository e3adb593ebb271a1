"""ECS emulator: moto's server plus a scheduler that plays ECS's service scheduler.

Only one emulator per process: moto's backends are process-global.

The names below are loaded when first used: importing moto takes over a second, and a module
of the emulator that needs none of it (its settings, its metric store, its traffic clock) is
imported without it, as the unit tests of those modules are.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admin import EmulatorAdmin, EmulatorAdminError
    from .server import Emulator, start_emulator
    from .settings import EmulatorSettings

_MODULE_OF = {
    "Emulator": ".server",
    "start_emulator": ".server",
    "EmulatorAdmin": ".admin",
    "EmulatorAdminError": ".admin",
    "EmulatorSettings": ".settings",
}

__all__ = ["Emulator", "EmulatorAdmin", "EmulatorAdminError", "EmulatorSettings", "start_emulator"]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE_OF[name], __name__), name)
