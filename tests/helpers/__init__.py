"""Test helpers, each once, for every test layer: `from tests.helpers import wait_until`.

One concern a module (imported on first use, so a layer pays only for what it uses: the unit
tests need not import moto or the worker):

- `waiting`: `wait_until` (async) and `wait_until_sync`, on one deadline loop
- `ecs`: the emulator's test settings and clients, ECS builders and readers, `CLUSTER`
- `deployment_requests`: `RequestFactory`, request files, activity inputs
- `temporal`: starting deployments, `status`, stages, how a run failed
- `runs`: `Runs`, the runs a test started: terminated if open, replayed once closed
- `replay`: `replay_histories` on today's workflow code, and the session's tally
- `logs`: `LogCapture`, `in_order`
- `processes`: `ROOT`, `free_port`, stopping children, `DevServer`, `start_time_skipping`
- `workers`: the worker in this process or as `python worker.py`
- `command_line`: the `temporal` CLI and `starter.py` as subprocesses
- `local_http`: `serving` a handler on a free local port, `webhook_receiver` (notifications)
- `connections`: `recording` every TCP connection attempted, refusing all off loopback
- `verification`: what verification steps check: a local HTTP server, CloudWatch datapoints,
  the example check workflow on a worker of its own, standalone (RunTask) tasks
- `analysis_report`: `sample_analysis`, a hand-made canary analysis for the report's tests
- `health_checks`: `python worker.py --check` as a container runs it, with a worker's environment
- `metrics`: `scrape` (a worker's `/metrics` as Prometheus reads it), `metrics_worker`,
  `prometheus_server` (Debian's Prometheus scraping a worker, asked through its HTTP API)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "waiting": ["wait_until", "wait_until_sync"],
    "ecs": [
        "CLUSTER",
        "FAST_WAITER",
        "REGION",
        "START_SECONDS",
        "STOP_SECONDS",
        "create_service",
        "describe",
        "emulator_client",
        "existing_service",
        "inventory",
        "is_stable",
        "known_speeds",
        "messages",
        "register",
        "tasks_of",
        "wait_stable",
    ],
    "deployment_requests": [
        "RequestFactory",
        "analysis_settings",
        "canary_create_input",
        "canary_wait_input",
        "request_file",
    ],
    "temporal": [
        "SHORT_TASK_TIMEOUT",
        "activity_running",
        "refused_continuations",
        "approve_at_gate",
        "assert_failed_at_once",
        "failed_with",
        "failure_of",
        "gate_is_open",
        "is_running",
        "run_status",
        "start",
        "status",
        "wait_for_stage",
    ],
    "runs": ["Runs"],
    "replay": ["TALLY", "replay_histories", "replayer"],
    "logs": ["LogCapture", "in_order", "logged_json"],
    "processes": [
        "BIN",
        "ROOT",
        "SERVER_START_TIMEOUT",
        "DevServer",
        "free_port",
        "free_ports",
        "kill_hard",
        "start_time_skipping",
        "stop",
    ],
    "workers": ["in_process_worker", "spawn_worker", "worker_process", "worker_settings"],
    "command_line": ["STARTER_USER", "Done", "Starter", "cli_start", "temporal_cli"],
    "local_http": ["Received", "WebhookReceiver", "serving", "webhook_receiver"],
    "connections": ["ConnectionLog", "recording"],
    "verification": [
        "HttpTarget",
        "check_example",
        "check_worker",
        "guarding_alarm",
        "http_target",
        "put_metric",
        "standalone_tasks",
    ],
    "analysis_report": ["sample_analysis"],
    "health_checks": ["run_check", "without_credentials", "worker_environment"],
    "metrics": [
        "PROMETHEUS",
        "Prometheus",
        "Scrape",
        "finite_values",
        "metrics_worker",
        "prometheus_server",
        "scrape",
    ],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
