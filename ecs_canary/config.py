"""Process configuration read from the environment (worker and starter share it).

Temporal's own connection settings (address, namespace, TLS, API key, profiles) come from
`temporalio.envconfig`; AWS settings come from boto3's standard chain. Only what neither
of them covers is read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ecs_canary.names import TASK_QUEUE


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as err:
        raise SystemExit(f"{name} must be a number, got {raw!r}") from err
    if value <= 0:
        raise SystemExit(f"{name} must be greater than 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class WorkerSettings:
    task_queue: str
    max_concurrent_activities: int
    graceful_shutdown_seconds: float
    ecs_calls_per_second: float

    @classmethod
    def from_env(cls) -> WorkerSettings:
        return cls(
            task_queue=os.environ.get("TEMPORAL_TASK_QUEUE") or TASK_QUEUE,
            max_concurrent_activities=int(_env_float("ECS_CANARY_MAX_CONCURRENT_ACTIVITIES", 200)),
            graceful_shutdown_seconds=_env_float("ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS", 30),
            ecs_calls_per_second=_env_float("ECS_CANARY_ECS_CALLS_PER_SECOND", 10),
        )
