"""A decision sent to a run a restarted worker has not replayed yet, beside `status` queries of
it, is answered, not lost (ecs_canary.unprocessed_update).

Each round restarts `python worker.py` and, before it polls, sends `starter.py approve` (its
code, in this process) and a few `status` queries, as operators' `watch`es and the worker's
gauges send them: the new worker takes them together and replays the run for a query whose
history already holds the approval's workflow task, and the SDK then completed that task
without answering the approval ("Workflow Update is rejected because it wasn't processed by
worker", `UnprocessedUpdate`). No Update of the worker's own is involved. The run carries
refused signals, so that each replay takes a while (0.2-2.5 s on 2 cores for 2,000). Sent once,
the approvals failed so in 3 runs of 3 of this test; sent again as starter.py does, none does.

With 1,500 the run keeps its history (below workflows.continue_at_gate's threshold). With 2,000
it continues as new at its gate once the signals pause, often while no worker runs: the first
approval then comes with the quiet timer's firing to a worker that takes the long history cold
(it answered the Update later in the task than the timer's firing, and a quiet timer started
again there failed the replay: Nondeterminism in 3 runs of 5), or reaches the run as it
continues (starter.py follows it to its next run)."""

from __future__ import annotations

import asyncio

import pytest

from bench.flood import attempts_shown, send_refused_signals
from cli.commands import decide
from starter import parser
from tests.helpers import (
    existing_service,
    in_process_worker,
    status,
    wait_for_stage,
    wait_until,
    worker_process,
)
from workflows.continue_at_gate import CONTINUE_AT_GATE_AFTER_EVENTS

APPROVERS = ["alice", "carol", "dave", "erin"]
# `status` queries at once beside each decision: operators' `watch`es, the worker's gauges.
WATCHERS = 4


async def _all_counted(handle, flood: int) -> bool:
    return attempts_shown(await status(handle)) >= flood


@pytest.mark.parametrize("flood", [1_500, 2_000], ids=["one-run", "continues-as-new"])
async def test_decisions_beside_a_cold_status_are_answered(
    client, task_queue, requests, ecs, deploy, tmp_path, flood
):
    existing_service(ecs, requests)
    gate = {"approvers": APPROVERS, "min_approvals": len(APPROVERS)}
    async with in_process_worker(client, task_queue):
        handle = await deploy(requests.raw(verification=gate))
        await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
        await send_refused_signals(handle, flood)
        await wait_until(lambda: _all_counted(handle, flood), timeout=120)
    address = client.service_client.config.target_host

    answers = []
    for number, approver in enumerate(APPROVERS):
        log = tmp_path / f"worker-{approver}.log"
        with worker_process(address, task_queue, log):
            approve = parser().parse_args(["approve", handle.id, "--by", approver])
            # All wait for the new worker's first polls, as they would during a deploy.
            *shown, decided = await asyncio.gather(
                *(status(handle) for _ in range(WATCHERS)), decide(client, approve)
            )
            # Each query answers before or after the approval, whichever the worker took first.
            seen = (APPROVERS[:number], APPROVERS[: number + 1])
            before_or_after = all(one.approvals in seen for one in shown)
            answers.append((decided, before_or_after, (await status(handle)).approvals))
            if approver == APPROVERS[-1]:
                result = await handle.result()  # the rolling deploy needs the worker
    last_run = (await client.get_workflow_handle(handle.id).describe()).raw_description
    continued = (
        last_run.workflow_execution_info.first_run_id
        != last_run.workflow_execution_info.execution.run_id
    )

    assert answers == [(0, True, APPROVERS[: number + 1]) for number in range(len(APPROVERS))]
    assert result.outcome == "succeeded"
    assert result.decision.approvals == APPROVERS
    assert continued == (flood >= CONTINUE_AT_GATE_AFTER_EVENTS)
