"""A flood past CONTINUE_AT_GATE_AFTER_EVENTS on the real dev server and the ECS emulator: the
deployment continues as new at its gate (workflows.continue_at_gate), so a worker that starts
afterwards answers `status` from a short history; an approval typed for the first run (`starter.py
approve --run-id`) still decides the deployment, which rolls out, and `starter.py watch`
follows it from run to run. A decision whose run was looked up just before the run continued
reaches the closed run, and `starter.py` sends it on to the next run."""

from __future__ import annotations

from unittest.mock import AsyncMock

import cli.commands
from bench.flood import STATUS_SECONDS, attempts_shown, send_refused_signals, timed_status
from cli.format import clock
from cli.runs import continued_since
from ecs_canary import search_attributes as sa
from ecs_canary.attempt_log import MAX_REFUSED_ATTEMPTS
from starter import parser
from tests.helpers import (
    existing_service,
    in_process_worker,
    refused_continuations,
    status,
    wait_for_stage,
    wait_until,
)
from workflows.continue_at_gate import CONTINUE_AT_GATE_AFTER_EVENTS

# Each refused signal is one event at least: this many take the history past the threshold.
FLOOD = CONTINUE_AT_GATE_AFTER_EVENTS + 500
# Its own service: `starter.py history` lists every deployment of a service on the server.
SERVICE = "floodapp"


async def test_a_flooded_gate_continues_as_new_and_a_new_worker_answers_quickly(
    client, task_queue, requests, ecs, deploy, starter, monkeypatch, capsys
):
    existing_service(ecs, requests, SERVICE)
    async with in_process_worker(client, task_queue):
        handle = await deploy(requests.raw(SERVICE, verification={"min_approvals": 2}))
        opened = await wait_for_stage(handle, "verification", gate_open=True, timeout=120)
        first = await handle.describe()
        first_run = first.run_id
        watch = await starter.spawn("watch", handle.id)
        await wait_until(lambda: watch.printed(f"watching {handle.id} (run {first_run})"))
        await send_refused_signals(handle, FLOOD)

        async def continued_with_every_attempt() -> bool:
            described = await handle.describe()
            counted = attempts_shown(await status(handle)) >= FLOOD
            return described.run_id != first_run and counted

        await wait_until(continued_with_every_attempt, timeout=300)
        # It continued once the flood paused, not in the middle of it.
        assert await refused_continuations(client, handle.id, first_run) == 0

    current = await handle.describe()
    assert current.history_length < CONTINUE_AT_GATE_AFTER_EVENTS
    # Temporal carried the search attributes over: `starter.py pending` lists the gate.
    assert current.typed_search_attributes.get(sa.DEPLOYMENT_STAGE) == "verification"
    pending = await starter.run("pending")
    assert pending.code == 0 and f"{handle.id}  (run {current.run_id})" in pending.out
    async with in_process_worker(client, task_queue):  # a new worker replays the short history
        seconds, flooded = await timed_status(handle)
        assert flooded.gate_open and flooded.gate_deadline == opened.gate_deadline
        assert len(flooded.attempts) == MAX_REFUSED_ATTEMPTS
        assert flooded.refused_attempts_dropped == FLOOD - MAX_REFUSED_ATTEMPTS
        assert seconds < STATUS_SECONDS, f"status took {seconds:.2f}s"

        approved = await starter.run("approve", handle.id, "--run-id", first_run, "--by", "alice")
        assert approved.code == 0, approved.err
        assert f"approve run {current.run_id} of {handle.id}" in approved.out
        # Bob's run was looked up a moment before the run continued: his approval reaches the
        # closed first run, and is sent on to the current one.
        looked_up = AsyncMock(return_value=first_run)
        monkeypatch.setattr(cli.commands, "decision_run", looked_up)
        bobs = parser().parse_args(["approve", handle.id, "--by", "bob"])
        assert await cli.commands.decide(client, bobs) == 0
        printed = capsys.readouterr().out
        assert f"run {first_run} continued as new: approve run {current.run_id}" in printed
        result = await handle.result()
    assert result.outcome == "succeeded" and result.canary_deleted
    # `history` shows the deployment once: its last run, from its first run's start.
    row, listed = await wait_until(lambda: _history_row(starter, current.run_id), timeout=30)
    assert clock(first.start_time) in row
    assert first_run not in listed
    # `watch` followed the deployment from run to run, to its end.
    watched = await watch.finish(timeout=60)
    assert watched.code == 0, watched.err
    assert f"watching run {current.run_id}" in watched.out
    assert "succeeded" in watched.out.splitlines()[-1]
    assert result.decision is not None and result.decision.approvals == ["alice", "bob"]
    main = ecs.describe_services(cluster=requests.seed["cluster"], services=[SERVICE])
    assert main["services"][0]["taskDefinition"] == result.task_definition_arn


async def test_following_a_run_that_cannot_be_described_finds_nothing(client):
    """`starter.py` then reports the server's own answer to the decision, not a describe's."""
    unknown_run = "00000000-0000-4000-8000-000000000000"
    assert await continued_since(client, "ecs-canary/nowhere/nothing", unknown_run) is None


async def _history_row(starter, run_id: str) -> tuple[str, str] | None:
    """The row of run `run_id` in `starter.py history`, and the whole listing, once Temporal's
    list (updated a moment after a run closes) shows the run completed."""
    done = await starter.run("history", SERVICE)
    assert done.code == 0, done.err
    rows = [line for line in done.out.splitlines() if run_id in line]
    return (rows[0], done.out) if rows and "completed" in rows[0] else None
