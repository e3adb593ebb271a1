"""A worker that starts takes its queue's open runs into its cache (ecs_canary.warm_up): after a
restart, `status` of a run waiting at its gate is answered from the new worker's cache, not by
replaying the history the server would otherwise send with every query; the history gains no
event. A warm-up that fails (a closed run, no server) is reported and stops nothing.

Proof of the cache, from the SDK's metrics of the restarted worker (`python worker.py
--metrics-port`): its workflow task replays count the warm-up's and none for a query
(bench/flood.py measures the time each way with 10,000 refused signals). Its sticky cache hits
are not asserted: in about one start in eight here the run was not sticky on the new worker
after its warm-up (no query counted as a sticky hit, though none replayed the run either), and
an Update beside a query could then still come back unprocessed, as the README's "An Update no
worker answered" tells; the warm-up shortens that moment, it does not always end it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import Client

from ecs_canary import warm_up as warm_up_module
from ecs_canary.names import WARM_UP_UPDATE, WORKFLOW_TYPE
from ecs_canary.unprocessed_update import UNPROCESSED_UPDATE
from ecs_canary.warm_up import warm_run, warm_up
from tests.helpers import (
    existing_service,
    free_port,
    in_process_worker,
    logged_json,
    status,
    temporal_cli,
    wait_for_stage,
    wait_until,
)
from tests.helpers.metrics import metrics_worker, scrape

REPLAYS = "temporal_workflow_task_replay_latency_count"
QUERIES = 3


async def _history_length(handle) -> int:
    return (await handle.describe()).raw_description.workflow_execution_info.history_length


def _deployments(url: str, name: str) -> float:
    return scrape(url).value(name, workflow_type=WORKFLOW_TYPE)


async def test_a_restarted_worker_answers_status_from_its_cache(
    client, task_queue, requests, ecs, deploy, tmp_path
):
    existing_service(ecs, requests)
    async with in_process_worker(client, task_queue):
        handle = await deploy(requests.raw())
        await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
    events = await _history_length(handle)

    log = tmp_path / "worker.log"
    address = client.service_client.config.target_host
    with metrics_worker(address, task_queue, log) as url:
        (summary,) = await wait_until(lambda: logged_json(log, "Warmed up"), timeout=60)
        replays = _deployments(url, REPLAYS)
        for _ in range(QUERIES):
            assert (await status(handle)).gate_open
        assert _deployments(url, REPLAYS) == replays >= 1  # the warm-up's; none for a query
        warm_up_again = ["update", "execute", "--workflow-id", handle.id, "--name", WARM_UP_UPDATE]

        async def answered_by_the_run() -> Any:
            done = await temporal_cli(client, "workflow", *warm_up_again)
            return None if UNPROCESSED_UPDATE in done.err else done  # sent again, as documented

        refused = await wait_until(answered_by_the_run, timeout=30)

    assert (summary["runs"], summary["warmed"], summary["not_warmed"]) == (1, 1, {})
    assert refused.code != 0 and "the run refuses it and nothing changes" in refused.err
    assert await _history_length(handle) == events  # the refused Updates left no event


async def test_a_closed_run_is_reported_not_warmed(client, task_queue, requests, deploy):
    handle = await deploy(requests.raw())  # no worker: it never runs
    await handle.terminate("closed before its warm-up")

    assert await warm_run(client, await handle.describe()) == "NOT_FOUND"


async def test_a_run_no_worker_takes_is_given_up(client, task_queue, requests, deploy, monkeypatch):
    monkeypatch.setattr(warm_up_module, "WARM_UP_SECONDS", 0.5)
    handle = await deploy(requests.raw())  # no worker polls its queue

    assert await warm_run(client, await handle.describe()) == "no answer within 0.5 s"


async def test_a_warm_up_cancelled_with_its_worker_stops_at_once(
    client, task_queue, requests, deploy
):
    handle = await deploy(requests.raw())  # no worker polls its queue
    warming = asyncio.create_task(warm_run(client, await handle.describe()))
    await asyncio.sleep(0)  # the Update on its way
    warming.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(warming, timeout=5)


async def test_a_warm_up_without_a_server_logs_and_returns(logs, task_queue):
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)

    await warm_up(nowhere, task_queue, most=10)

    assert "Warm-up of the open runs stopped" in logs.lines()
