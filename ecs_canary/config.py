"""Process configuration read from the environment (worker and starter share it).

Temporal's own connection settings (address, namespace, TLS, API key, profiles) come from
`temporalio.envconfig`; AWS settings come from boto3's standard chain. Only what neither
of them covers is read here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from temporalio.common import WorkerDeploymentVersion

from ecs_canary.names import TASK_QUEUE
from ecs_canary.telemetry import metrics_address
from ecs_canary.versioning import worker_version_from_env


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


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SystemExit(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class WorkerSettings:
    task_queue: str
    max_concurrent_activities: int
    graceful_shutdown_seconds: float
    ecs_calls_per_second: float
    # The ECS budget of the account and region, shared by every worker on the task queue (see
    # ecs_canary.shared_budget); None: each worker keeps `ecs_calls_per_second` to itself.
    shared_ecs_calls_per_second: float | None = None
    # Run the workflow in Temporal's sandbox (see worker.py for why it is off by default).
    workflow_sandbox: bool = False
    # A worker whose event loop does not answer for this long dumps its threads' stacks and
    # exits (ecs_canary.watchdog).
    watchdog_seconds: float = 60.0
    # The Worker Deployment Version this worker runs as (ecs_canary.versioning); None:
    # unversioned.
    version: WorkerDeploymentVersion | None = None
    # `host:port` of the Prometheus endpoint (ecs_canary.telemetry); None: no metrics. The
    # gauges of what is in flight are read again every `metrics_refresh_seconds`.
    metrics_address: str | None = None
    metrics_refresh_seconds: float = 10.0

    @classmethod
    def from_env(cls, argv: Sequence[str] = ()) -> WorkerSettings:
        """From the environment, and `argv`'s `--metrics-port` (the worker's command line)."""
        shared = os.environ.get("ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND")
        return cls(
            task_queue=os.environ.get("TEMPORAL_TASK_QUEUE") or TASK_QUEUE,
            max_concurrent_activities=int(_env_float("ECS_CANARY_MAX_CONCURRENT_ACTIVITIES", 200)),
            graceful_shutdown_seconds=_env_float("ECS_CANARY_GRACEFUL_SHUTDOWN_SECONDS", 30),
            ecs_calls_per_second=_env_float("ECS_CANARY_ECS_CALLS_PER_SECOND", 10),
            shared_ecs_calls_per_second=(
                _env_float("ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND", 0) if shared else None
            ),
            workflow_sandbox=_env_flag("ECS_CANARY_WORKFLOW_SANDBOX"),
            watchdog_seconds=_env_float("ECS_CANARY_WATCHDOG_SECONDS", 60),
            version=worker_version_from_env(),
            metrics_address=metrics_address(os.environ, argv),
            metrics_refresh_seconds=_env_float("ECS_CANARY_METRICS_REFRESH_SECONDS", 10),
        )
