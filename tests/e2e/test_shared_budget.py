"""Three `python worker.py` processes on one task queue share one ECS budget
(ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND): each learns the others from the Temporal server,
takes an equal share, and a worker that joins late makes the others shrink theirs."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import pytest

from tests.helpers import approve_at_gate, logged_json, wait_until, worker_process

BUDGET = "9"
DEPLOYMENTS = 8  # about 80 ECS calls: at 9 per second they queue, so the limit is what shows
SHARED = "ECS call budget shared"


def _share(log_path) -> tuple[int, int] | None:
    """(workers, calls per second) of the worker's latest share, if it has one."""
    lines = logged_json(log_path, SHARED)
    return (lines[-1]["workers"], lines[-1]["calls_per_second"]) if lines else None


@pytest.mark.slow
async def test_workers_on_one_task_queue_split_the_budget_and_deploy(
    client, task_queue, requests, emulator, tmp_path, deploy
):
    address = client.service_client.config.target_host
    logs = [tmp_path / f"worker-{i}.log" for i in range(3)]
    with ExitStack() as workers:
        workers.enter_context(
            worker_process(
                address, task_queue, logs[0], ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND=BUDGET
            )
        )
        assert await wait_until(lambda: _share(logs[0]), timeout=60) == (1, 8)
        for log in logs[1:]:
            workers.enter_context(
                worker_process(
                    address, task_queue, log, ECS_CANARY_SHARED_ECS_CALLS_PER_SECOND=BUDGET
                )
            )
        # Every worker, the first one too, ends with a third of the budget, less one call.
        for log in logs:
            await wait_until(lambda log=log: _share(log) == (3, 2), timeout=60)
        emulator.admin.reset_calls()
        handles = [await deploy(requests.raw(service=f"shared{i}")) for i in range(DEPLOYMENTS)]
        results = await asyncio.gather(*(approve_at_gate(h, timeout=180) for h in handles))
    assert [r.outcome for r in results] == ["succeeded"] * DEPLOYMENTS
    # The deployments' calls went through the three shares: never more than the one budget in
    # any second, though they queued for it.
    calls = emulator.admin.calls()
    assert calls["total"] >= 6 * DEPLOYMENTS
    assert calls["max_per_second"] <= int(BUDGET)
