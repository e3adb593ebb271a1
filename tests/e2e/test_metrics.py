"""The worker's Prometheus endpoint: `python worker.py --metrics-port N` serves the SDK's
metrics and the product's `ecs_canary_*` ones, each with the value the deployment earned; and
a replay of a finished run, on the same runtime, counts nothing again."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from ecs_canary import telemetry
from ecs_canary.models import Outcome
from ecs_canary.temporal import DATA_CONVERTER
from tests.e2e.test_verification_steps import http_step
from tests.helpers import (
    Scrape,
    approve_at_gate,
    existing_service,
    free_port,
    http_target,
    in_process_worker,
    replayer,
    scrape,
    wait_for_stage,
    wait_until,
)

THROTTLE_RATE = 0.2


def _in_flight(metrics: Scrape) -> dict[str, float]:
    return metrics.by_label(telemetry.DEPLOYMENTS_IN_FLIGHT, "stage")


async def _scraped_when(url: str, condition: Any) -> Scrape:
    """The first scrape of `url` that meets `condition` (the endpoint may not be up yet)."""

    def met() -> Scrape | None:
        try:
            metrics = scrape(url)
        except OSError:
            return None
        return metrics if condition(metrics) else None

    found: Scrape = await wait_until(met, timeout=60)
    return found


async def test_a_deployment_shows_in_the_workers_metrics(
    metrics_url, task_queue, requests, ecs, emulator, deploy
):
    existing_service(ecs, requests)
    with http_target() as target:
        emulator.admin.reset_calls()
        emulator.admin.settings(throttle_rate=THROTTLE_RATE)
        request = requests.raw(verification={"steps": [http_step(target, "/health")]})
        handle = await deploy(request)
        await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
        at_gate = await _scraped_when(
            metrics_url, lambda m: m.value(telemetry.GATES_OPEN, task_queue=task_queue) == 1
        )
        result = await approve_at_gate(handle)
        emulator.admin.settings(throttle_rate=0.0)
        after = await _scraped_when(
            metrics_url,
            lambda m: (
                m.value(telemetry.DEPLOYMENTS_ENDED) == 1
                and not any(_in_flight(m).values())
                and m.value(telemetry.GATES_OPEN) == 0
            ),
        )
    ecs_calls = emulator.admin.calls()

    assert result.outcome == "succeeded"
    # While the gate waited: one deployment, in verification, its gate open.
    assert {stage: n for stage, n in _in_flight(at_gate).items() if n} == {"verification": 1}
    assert set(_in_flight(at_gate)) >= {"canary_deploy", "verification", "rolling_deploy"}
    # Once it ended: what it did, each counted once.
    assert after.value(telemetry.DEPLOYMENTS_STARTED, task_queue=task_queue) == 1
    ended = after.by_label(telemetry.DEPLOYMENTS_ENDED, "outcome")
    assert ended == {outcome.value: 0 for outcome in Outcome} | {"succeeded": 1}
    gate_waits = f"{telemetry.GATE_WAIT}_count"
    assert after.value(gate_waits, decision="approve", via="signal") == 1
    assert 0 < after.value(f"{telemetry.GATE_WAIT}_sum") < 120
    steps = after.matching(telemetry.VERIFICATION_STEPS)
    assert [(s.labels["type"], s.labels["result"], s.value) for s in steps] == [
        ("http", "passed", 1)
    ]
    # Every ECS request the emulator answered: a call's first attempt or a retry, each
    # queued for the budget; the emulator's throttled answers are the worker's.
    calls = after.by_label(telemetry.ECS_CALLS, "operation")
    retries = after.by_label(telemetry.ECS_RETRIES, "operation")
    queued = after.by_label(f"{telemetry.ECS_BUDGET_WAIT}_count", "operation")
    answered = ecs_calls["by_operation"]
    assert {"CreateService", "UpdateService", "DeleteService"} <= set(calls)
    assert {op: calls[op] + retries.get(op, 0) for op in calls} == answered
    assert queued == answered
    assert ecs_calls["throttled"] > 0
    assert after.value(telemetry.ECS_THROTTLED) == ecs_calls["throttled"]
    assert 0 < sum(retries.values()) <= ecs_calls["throttled"]
    # The SDK's own metrics share the endpoint.
    sdk = after.names()
    assert "temporal_workflow_task_schedule_to_start_latency_count" in sdk
    assert "temporal_activity_schedule_to_start_latency_count" in sdk
    assert "temporal_workflow_completed_total" in sdk or "temporal_workflow_completed" in sdk


async def test_a_replay_counts_nothing_again(
    temporal_env, task_queue, requests, ecs, ecs_state, deploy
):
    """Run a deployment on a worker whose runtime serves metrics, then replay its history with
    a Replayer on that same runtime: the product's metrics read the same before and after."""
    existing_service(ecs, requests)
    port = free_port()
    runtime = telemetry.prometheus_runtime(f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/metrics"
    env_client = temporal_env.client
    client = await Client.connect(
        env_client.service_client.config.target_host,
        namespace=env_client.namespace,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )
    async with in_process_worker(client, task_queue):
        handle = await deploy(requests.raw())
        await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
        result = await approve_at_gate(handle)
    ran = scrape(url).with_prefix("ecs_canary_")
    history = await handle.fetch_history()
    replayed = await replayer(runtime=runtime).replay_workflow(history)
    again = scrape(url).with_prefix("ecs_canary_")

    assert result.outcome == "succeeded" and replayed.replay_failure is None
    assert ran[(telemetry.DEPLOYMENTS_STARTED, _labels(task_queue))] == 1
    assert ran[(telemetry.DEPLOYMENTS_ENDED, _labels(task_queue, outcome="succeeded"))] == 1
    assert again == ran


def _labels(task_queue: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            {
                "namespace": "default",
                "service_name": "temporal-core-sdk",
                "task_queue": task_queue,
                "workflow_type": "EcsCanaryDeployment",
                **more,
            }.items()
        )
    )
