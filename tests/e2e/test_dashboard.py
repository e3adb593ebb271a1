"""deploy/grafana-dashboard.json against a real Prometheus: Debian's `prometheus` scrapes a
worker (`python worker.py --metrics-port N`) while two deployments run, each through an HTTP
verification step and a gate a person approves, some ECS calls throttled; then every panel's
PromQL, asked as Grafana asks a time series panel (a range query over the deployments' time),
must return data.

Skipped where /usr/bin/prometheus is absent (.ci/run installs it with apt-get)."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import pytest

from tests.e2e.test_verification_steps import http_step
from tests.helpers import (
    PROMETHEUS,
    ROOT,
    HttpTarget,
    approve_at_gate,
    existing_service,
    finite_values,
    http_target,
    prometheus_server,
    wait_until,
)

pytestmark = pytest.mark.skipif(
    not PROMETHEUS.exists(), reason="no /usr/bin/prometheus (Debian's prometheus package)"
)

DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
# What Grafana puts for $__rate_interval with this test's 1 s scrape interval and range.
RATE_INTERVAL = "15s"
STEP_SECONDS = 2


def _panel_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def _as_grafana_sends(expr: str) -> str:
    expanded = expr.replace("$__rate_interval", RATE_INTERVAL)
    assert not re.search(r"\$\w+", expanded), f"a variable the test does not know: {expr}"
    return expanded


async def _deploy_and_approve(deploy: Any, requests: Any, target: HttpTarget) -> str:
    handle = await deploy(requests.raw(verification={"steps": [http_step(target, "/health")]}))
    result = await approve_at_gate(handle, timeout=120)
    return str(result.outcome)


async def test_every_dashboard_panel_has_data_from_a_real_prometheus(
    metrics_url, requests, ecs, emulator, deploy, tmp_path
):
    existing_service(ecs, requests)
    with http_target() as target, prometheus_server(metrics_url, tmp_path) as prometheus:
        await wait_until(lambda: prometheus.query("up == 1"), timeout=60)
        started = time.time()
        emulator.admin.settings(throttle_rate=0.2)
        outcomes = [await _deploy_and_approve(deploy, requests, target)]
        outcomes.append(await _deploy_and_approve(deploy, requests, target))
        emulator.admin.settings(throttle_rate=0.0)
        ended = 'sum(ecs_canary_deployments_ended_total{outcome="succeeded"}) == 2'
        await wait_until(lambda: prometheus.query(ended), timeout=60)
        # The last step at or after now: the samples that met the condition are in range.
        end = started + math.ceil((time.time() - started) / STEP_SECONDS) * STEP_SECONDS
        answers = {
            (title, expr): prometheus.query_range(
                _as_grafana_sends(expr), started, end, f"{STEP_SECONDS}s"
            )
            for title, expr in _panel_queries()
        }

    assert outcomes == ["succeeded", "succeeded"]
    assert len(answers) >= 10
    empty = [query for query, answer in answers.items() if not finite_values(answer)]
    assert not empty, f"panel queries without data: {empty}"
