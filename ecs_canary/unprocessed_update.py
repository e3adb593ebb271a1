"""An Update the server answers "wasn't processed by worker" is sent again: it did nothing, and
the same Update a moment later is answered by the run.

Why: an Update can meet a run that no worker holds in its cache (the worker restarted, or the
run left its cache) while `status` queries of it wait too, e.g. in the first second of a new
worker, when the approval and the operators' `watch` polls (or the worker's own gauges) were
waiting for it. The query goes to the worker as a task of its own, with the whole history; the
Update as a workflow task. When the worker takes both at once, the query's history can already
hold the Update's workflow task (scheduled and started), and the SDK (temporalio 1.35, its Rust
core) replays the query's history first, past those two events; then it applies the Update's
task, skips the events it has seen, and the Update's request, due after them, never becomes a
job for the workflow: the task is completed with no command and no answer ("Sending responses
to server commands=[] messages=[]" in the core's debug log). The server rejects an Update still
unanswered when the worker completes the task that carried it: failure type
`UnprocessedUpdate`, source "Server", "Workflow Update is rejected because it wasn't processed
by worker" (temporalio/temporal#5169). tests/e2e/test_update_race.py meets it every time with a
few `status` queries beside each approval, without any Update of the worker's own.

Why sending it again is safe: the server rejects only an Update the worker neither accepted
nor refused. No acceptance means no `WorkflowExecutionUpdateAccepted` event and no handler run:
the run and its history are as they were. The worker completed the task, so the run is now in
its cache and the next try is answered from there. The project's Updates refuse a repeat
anyway (an approval by the same person is "already approved").
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

UNPROCESSED_UPDATE = "UnprocessedUpdate"
# Tries in all; the second is answered from the worker's cache, the rest are a margin.
UPDATE_ATTEMPTS = 3
_PAUSE_SECONDS = 0.5

ResultT = TypeVar("ResultT")


def was_unprocessed(err: WorkflowUpdateFailedError) -> bool:
    """The server's own refusal of an Update no worker answered (not the run's refusal)."""
    cause = err.cause
    return (
        isinstance(cause, ApplicationError)
        and cause.type == UNPROCESSED_UPDATE
        and cause.failure is not None
        and cause.failure.source == "Server"
    )


async def execute_update(
    handle: WorkflowHandle[Any, Any],
    name: str,
    arg: Any,
    result_type: type[ResultT],
    attempts: int = UPDATE_ATTEMPTS,
) -> ResultT:
    """`handle.execute_update(name, arg)`, sent again when the server says no worker processed
    it; every other answer (the run's refusal included) is the caller's."""
    for _ in range(attempts - 1):
        try:
            return await handle.execute_update(name, arg, result_type=result_type)
        except WorkflowUpdateFailedError as err:
            if not was_unprocessed(err):
                raise
        await asyncio.sleep(_PAUSE_SECONDS)
    return await handle.execute_update(name, arg, result_type=result_type)
