"""The worker's Prometheus endpoint and the names of the product's metrics.

`ECS_CANARY_METRICS_PORT` (or `python worker.py --metrics-port N`) makes the worker serve
`/metrics` through the Temporal SDK's runtime telemetry, so the SDK's own metrics (task queue
latency, schedule-to-start, poll failures, ...) and the product's `ecs_canary_*` metrics share
one endpoint. The product records its metrics with the SDK's metric meter: workflow code with
`workflow.metric_meter()` (which records nothing while it replays: see `workflows.metrics`),
activities with `activity.metric_meter()` (`activities.call_metrics`), and the worker itself
with the runtime's meter (`ecs_canary.in_flight`).

The endpoint binds to `ECS_CANARY_METRICS_HOST`, loopback unless told otherwise: in a
container, set it to `0.0.0.0` so that Prometheus can reach it.

The names below are a public contract (the Grafana dashboard, deploy/grafana-dashboard.json,
queries them): counters end in `_total`, durations are in seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

METRICS_PORT_VARIABLE = "ECS_CANARY_METRICS_PORT"
METRICS_HOST_VARIABLE = "ECS_CANARY_METRICS_HOST"
DEFAULT_METRICS_HOST = "127.0.0.1"

# Recorded from workflow code (workflows.metrics).
DEPLOYMENTS_STARTED = "ecs_canary_deployments_started_total"
DEPLOYMENTS_ENDED = "ecs_canary_deployments_ended_total"  # by outcome
GATE_WAIT = "ecs_canary_gate_wait_seconds"  # by decision and via
VERIFICATION_STEPS = "ecs_canary_verification_steps_total"  # by type and result
ANALYSIS_VERDICTS = "ecs_canary_analysis_verdicts_total"  # by verdict
TRAINS_ENDED = "ecs_canary_trains_ended_total"  # by outcome
# Recorded by the activities' ECS calls (activities.call_metrics), by operation.
ECS_CALLS = "ecs_canary_ecs_calls_total"
ECS_THROTTLED = "ecs_canary_ecs_throttled_total"
ECS_RETRIES = "ecs_canary_ecs_retries_total"
ECS_BUDGET_WAIT = "ecs_canary_ecs_budget_wait_seconds"
# Kept by the worker from Temporal's record of the runs (ecs_canary.in_flight).
DEPLOYMENTS_IN_FLIGHT = "ecs_canary_deployments_in_flight"  # by stage
GATES_OPEN = "ecs_canary_gates_open"

# Each metric's HELP text: one per name, whoever records it.
HELP: Mapping[str, str] = {
    DEPLOYMENTS_STARTED: "Deployments started",
    DEPLOYMENTS_ENDED: "Deployments ended, by outcome",
    GATE_WAIT: "How long open gates waited for a decision, by decision and who decided",
    VERIFICATION_STEPS: "Verification steps ended, by type and result",
    ANALYSIS_VERDICTS: "Canary analyses ended, by final verdict",
    TRAINS_ENDED: "Release trains ended, by outcome",
    ECS_CALLS: "ECS API calls, by operation",
    ECS_THROTTLED: "ECS requests answered with throttling, by operation",
    ECS_RETRIES: "ECS requests botocore sent again, by operation",
    ECS_BUDGET_WAIT: "Time ECS requests waited for the worker's ECS call budget, by operation",
    DEPLOYMENTS_IN_FLIGHT: "Deployments running now on the task queue, by stage",
    GATES_OPEN: "Deployments on the task queue whose gate waits for a decision now",
}

# A gate waits for a person: from seconds (a test, an approval at hand) to a day.
_GATE_WAIT_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
# A request held back by the ECS call budget: none at all, up to a minute under heavy load.
_BUDGET_WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
HISTOGRAM_BUCKETS: Mapping[str, Sequence[float]] = {
    GATE_WAIT: _GATE_WAIT_BUCKETS,
    ECS_BUDGET_WAIT: _BUDGET_WAIT_BUCKETS,
}


def metrics_address(environ: Mapping[str, str], argv: Sequence[str] = ()) -> str | None:
    """`host:port` for the endpoint: the command line's `--metrics-port N` (other arguments are
    left to whoever reads them), else ECS_CANARY_METRICS_PORT, on ECS_CANARY_METRICS_HOST;
    None when neither sets a port (no endpoint)."""
    parser = argparse.ArgumentParser(prog="worker.py", add_help=False)
    parser.add_argument("--metrics-port", default=None)
    flag: str | None = parser.parse_known_args(list(argv))[0].metrics_port
    source = "--metrics-port" if flag is not None else METRICS_PORT_VARIABLE
    raw = (flag if flag is not None else environ.get(METRICS_PORT_VARIABLE, "")).strip()
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"{source} must be a port from 1 to 65535, got {raw!r}")
    host = environ.get(METRICS_HOST_VARIABLE, "").strip() or DEFAULT_METRICS_HOST
    return f"{host}:{int(raw)}"


def prometheus_runtime(address: str) -> Runtime:
    """A Temporal runtime that serves its metrics, and every metric recorded through its meter,
    on `http://<address>/metrics`. Durations are in seconds, as Prometheus expects."""
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(
                    bind_address=address,
                    durations_as_seconds=True,
                    histogram_bucket_overrides=HISTOGRAM_BUCKETS,
                )
            )
        )
    except Exception as err:  # the SDK's core says what it could not bind, as a plain error
        raise SystemExit(f"worker: cannot serve metrics on {address}: {err}") from None


def serve_metrics(address: str) -> Runtime:
    """Serve metrics on `address` from the runtime every client of this process then uses:
    called before the worker connects."""
    runtime = prometheus_runtime(address)
    Runtime.set_default(runtime, error_if_already_set=True)
    return runtime
