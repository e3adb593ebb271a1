"""ECS emulator: moto's server plus a scheduler that plays ECS's service scheduler.

Only one emulator per process: moto's backends are process-global.
"""

from .admin import EmulatorAdmin, EmulatorAdminError
from .server import Emulator, start_emulator
from .settings import EmulatorSettings

__all__ = ["Emulator", "EmulatorAdmin", "EmulatorAdminError", "EmulatorSettings", "start_emulator"]
