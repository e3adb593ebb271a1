"""A worker that starts takes its task queue's open runs into its cache, in the background, so
that `status` on a run waiting at its gate answers at once after a worker deploy (issue 23).

Why: a worker holds a run in its cache, and the server sends the run's tasks and queries to
that worker (the run is sticky on it), only once the worker has completed one of the run's
workflow tasks. A run waiting quietly at its gate runs none for hours, so after a restart every
`status` query of it (each `starter.py status` or `watch` poll) hands a worker the run's whole
history to replay: 1.5 to 2.5 s for a history of 10,000 refused signals on a loaded 2-core
machine, and the SDK's per-signal cost alone is more than a second (a flooded deployment
continues as new before its history is that long: workflows.continue_at_gate). So the query
must not replay, and the replay is done once, here, before anyone asks.

How: the worker lists the open runs of both workflow types on its task queue (Temporal's
visibility) and sends each the `warm_up` Update (workflows.warm_up), which every run refuses.
A refused Update leaves no event in the history, but the server hands it to a worker in a
workflow task: that worker replays the run, refuses, and holds the run in its cache, usually
sticky on it (README, "A worker's warm-up", says when it was not). From then on a `status`
costs milliseconds.

Bounds and costs:
- It never delays the worker: it starts once the worker polls (it needs a worker to take the
  Updates) and runs beside it; `WARM_UP_AT_ONCE` runs at a time, so that one run's round trips
  overlap another's replay. A replay is Python on the worker's one interpreter: more at once
  would not go faster, and would stretch each replay toward the SDK's 2 s limit on one
  activation.
- At most as many runs as the worker caches (`max_cached_workflows`), the most recently started
  first: a run warmed beyond that would push an earlier one out.
- Nothing it meets stops the worker: a run that closed meanwhile, a run whose workflow task is
  failing (it is given up after `WARM_UP_SECONDS`), an unreachable server. It logs one line:
  how many runs it warmed and, by reason, how many it could not.
- Several workers on one queue all warm every run: each run gets one Update per starting
  worker. The first of them is taken by whichever worker polls it (not necessarily the one that
  sent it), which replays the run once and holds it; the others then reach the run on that
  worker, from its cache, in milliseconds. A rolling deploy thus costs each run one replay per
  worker that held it and was stopped, as it would anyway once the run next woke up.
- Events in the history: none, when the worker's task goes well. Two cases write some, as
  they would for the run's next workflow task of any kind (Temporal writes a speculative task
  that fails or times out, temporalio/temporal#3898 and #4369):
  - After a crash (a worker stopped gracefully tells the server, which stops sending it tasks
    at once), the server sends the task to the dead worker's sticky queue and waits out its
    sticky timeout (10 s) before handing it to the task queue: the warm-up waits those 10 s and
    the history gains 5 events (the task scheduled and timed out, then scheduled, started and
    completed; measured with the dev server).
  - A replay longer than the SDK's 2 s limit on one activation (10,000 refused signals on a
    machine at load 9-11) fails the task: the history gains the failed task's events and the
    server retries it; the warm-up then completes on the retry (seen once in the bench's
    flood, bench/flood.py: 15.8 s instead of 1.3-2.5 s). `WARM_UP_AT_ONCE` lets at most two
    such replays share the interpreter.
- A run pinned to another build of the worker (Worker Versioning) is warmed on a worker of that
  build, if one polls; otherwise it is given up after `WARM_UP_SECONDS`.
- Its Update can reach the worker together with a `status` query of the run (an operator's
  `watch`, the worker's own gauges), and the SDK then drops it unanswered: the server reports
  it unprocessed, and it is sent again (ecs_canary.unprocessed_update). An operator's Update
  can meet the same at that moment, with or without the warm-up; once the run is warmed,
  queries no longer replay it and the moment is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from ecs_canary.names import TRAIN_WORKFLOW_TYPE, WARM_UP_REFUSED, WARM_UP_UPDATE, WORKFLOW_TYPE
from ecs_canary.unprocessed_update import execute_update

WARM_UP_AT_ONCE = 2
# A warm-up given up: its run's workflow task keeps failing, or only another build may take it.
WARM_UP_SECONDS = 30.0


def open_runs_query(task_queue: str) -> str:
    """The open deployments and trains on `task_queue`."""
    types = ", ".join(f"'{name}'" for name in (WORKFLOW_TYPE, TRAIN_WORKFLOW_TYPE))
    return f"WorkflowType IN ({types}) AND ExecutionStatus='Running' AND TaskQueue='{task_queue}'"


async def warm_run(client: Client, execution: WorkflowExecution) -> str | None:
    """Send the run the `warm_up` Update: None once a worker refused it as every run does (it
    holds the run now), otherwise why the run was not warmed. An Update no worker answered (it
    met a `status` query replaying the run on the same worker, ecs_canary.unprocessed_update) is
    sent again."""
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    try:
        async with asyncio.timeout(WARM_UP_SECONDS):
            await execute_update(handle, WARM_UP_UPDATE, None, type(None))
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        # The SDK's word for a wait cancelled: by the timeout above, or by the worker
        # stopping (then the cancel goes on).
        if _being_cancelled():
            raise asyncio.CancelledError from None
        return f"no answer within {WARM_UP_SECONDS:g} s"
    except WorkflowUpdateFailedError as err:
        refusal = err.cause
        if isinstance(refusal, ApplicationError) and refusal.type == WARM_UP_REFUSED:
            return None
        return f"refused: {refusal}"
    except RPCError as err:  # the run closed meanwhile (NOT_FOUND), the server unreachable
        return err.status.name
    return "accepted"  # by a build whose run does not refuse it


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def warm_up(client: Client, task_queue: str, most: int) -> None:
    """Warm at most `most` open runs of `task_queue`, `WARM_UP_AT_ONCE` at a time; log one line
    of what happened, whatever happened."""
    log = structlog.get_logger("ecs_canary.warm_up").bind(task_queue=task_queue)
    started = time.monotonic()
    at_once = asyncio.Semaphore(WARM_UP_AT_ONCE)

    async def one(execution: WorkflowExecution) -> str | None:
        async with at_once:
            return await warm_run(client, execution)

    try:
        runs = [e async for e in client.list_workflows(open_runs_query(task_queue), limit=most)]
        failures = Counter(
            why for why in await asyncio.gather(*(one(run) for run in runs)) if why is not None
        )
    # Whatever failed (the server unreachable, its answer unreadable), the runs answer as they
    # would without a warm-up: each replayed when it is next asked or next wakes up.
    except Exception as err:  # noqa: BLE001 - logged; a warm-up never stops the worker
        log.warning("Warm-up of the open runs stopped", error=str(err))
        return
    log.info(
        "Warmed up the open runs",
        runs=len(runs),
        warmed=len(runs) - failures.total(),
        not_warmed=dict(failures),
        seconds=round(time.monotonic() - started, 3),
    )


@asynccontextmanager
async def warming_up(worker: Worker) -> AsyncIterator[None]:
    """While the block runs (the worker polls), warm its task queue's open runs in the
    background; a warm-up still going when the block ends is cancelled."""
    most = worker.config().get("max_cached_workflows", 0)
    if most == 0:  # a worker that caches nothing replays every run anyway
        yield
        return
    warming = asyncio.create_task(warm_up(worker.client, worker.task_queue, most))
    try:
        yield
    finally:
        if not warming.done():  # its one line, for a worker stopped within its warm-up
            log = structlog.get_logger("ecs_canary.warm_up")
            log.info("Warm-up of the open runs cancelled: the worker is stopping")
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
