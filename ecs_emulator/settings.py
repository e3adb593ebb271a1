"""Emulator settings: CLI flags, their ECS_EMULATOR_* environment twins, run-time changes."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

ENV_PREFIX = "ECS_EMULATOR_"
RUNTIME_SETTINGS = (
    "task_start_seconds",
    "task_stop_seconds",
    "throttle_rate",
    "health_check_seconds",
    "traffic_rps",
    "describe_services_delay_seconds",
)

# Each request is drawn in memory: a bound keeps a typo from stalling the emulator.
MAX_TRAFFIC_RPS = 10_000.0


@dataclass
class EmulatorSettings:
    """How the emulator listens, what it seeds and how fast tasks move.

    ``task_start_seconds``, ``task_stop_seconds``, ``throttle_rate`` and
    ``health_check_seconds`` (a load-balanced task's target: RUNNING to healthy or unhealthy)
    may change at run time through the admin endpoint; the scheduler reads them when a task
    changes state. So may ``traffic_rps``, which the traffic loop reads every second.
    ``task_run_seconds`` (how long a standalone RunTask task runs before its essential
    container exits) is fixed at start, like the listen address.
    """

    host: str = "127.0.0.1"
    port: int = 5000
    task_start_seconds: float = 2.0
    task_stop_seconds: float = 1.0
    throttle_rate: float = 0.0
    region: str = "us-east-1"
    cluster: str = "ecs-canary"
    tick_seconds: float = 0.1
    task_run_seconds: float = 1.0
    health_check_seconds: float = 1.0
    # Requests per second the emulator sends to its services' tasks (0: no traffic).
    traffic_rps: float = 20.0
    # How long every DescribeServices answer is held back (a stalled ECS, for fault tests).
    describe_services_delay_seconds: float = 0.0

    def __post_init__(self) -> None:
        validate_runtime(asdict(self))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EmulatorSettings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for name, default in asdict(cls()).items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = type(default)(raw)
        return cls(**values)

    def runtime(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in RUNTIME_SETTINGS}

    def update_runtime(self, changes: dict[str, Any]) -> dict[str, float]:
        """Apply admin changes atomically: all valid, or nothing changes."""
        unknown = set(changes) - set(RUNTIME_SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        parsed = {}
        for name, value in changes.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            parsed[name] = float(value)
        validate_runtime(parsed)
        for name, value in parsed.items():
            setattr(self, name, value)
        return self.runtime()


def validate_runtime(values: dict[str, Any]) -> None:
    for name in (
        "task_start_seconds",
        "task_stop_seconds",
        "task_run_seconds",
        "health_check_seconds",
        "describe_services_delay_seconds",
    ):
        if name in values and values[name] < 0:
            raise ValueError(f"{name} must be >= 0")
    if "traffic_rps" in values and not 0 <= values["traffic_rps"] <= MAX_TRAFFIC_RPS:
        raise ValueError(
            f"traffic_rps must be between 0 (no traffic) and {MAX_TRAFFIC_RPS:g} per second"
        )
    if "throttle_rate" in values and not 0 <= values["throttle_rate"] <= 1:
        raise ValueError("throttle_rate must be between 0 and 1")
    if "tick_seconds" in values and values["tick_seconds"] <= 0:
        raise ValueError("tick_seconds must be > 0")
