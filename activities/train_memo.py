"""One describe of a release train for all of a worker's deployments that check its memo at
about the same time (`activities.train.train_sent`).

A train approves a wave's canaries in a few workflow tasks, and each deployment then checks the
train's memo before it takes the decision. One describe per check made a wave of N canaries cost
N describes of a train that carries N pending children and a memo of N digests: work for the
dev server and the workers that grew with the square of the wave. Here the checks of one train
that a worker is asked for within `GATHER_SECONDS` share one describe.

Sharing changes no answer: a check joins only a describe that has not been sent yet, and the
deployment asked for its check after the train's signal reached it, which the train sent after
writing the digest (workflows.train_sent), so that describe sees the digest as its own would
have.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError, RPCStatusCode

# How long a describe waits for other checks of the same train before it is sent.
GATHER_SECONDS = 0.1
# The describes in flight at once on one worker, whatever number of trains its deployments
# check at the same moment.
_CONCURRENT_DESCRIBES = 20


@dataclass
class _Reads:
    """One event loop's describes: a worker runs its activities on one."""

    slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(_CONCURRENT_DESCRIBES)
    )
    # train workflow id -> its describe still gathering checks (not sent yet).
    gathering: dict[str, asyncio.Task[WorkflowExecutionDescription | None]] = field(
        default_factory=dict
    )


_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Reads] = (
    weakref.WeakKeyDictionary()
)


async def describe_train(client: Client, train: str) -> WorkflowExecutionDescription | None:
    """The latest run of the workflow `train` (None: there is none), described no earlier than
    this call."""
    reads = _reads.setdefault(asyncio.get_running_loop(), _Reads())
    read = reads.gathering.get(train)
    if read is None:
        read = asyncio.create_task(_describe(reads, client, train))
        read.add_done_callback(_retrieve)
        reads.gathering[train] = read
    # A check that is cancelled leaves the describe to the others.
    return await asyncio.shield(read)


async def _describe(
    reads: _Reads, client: Client, train: str
) -> WorkflowExecutionDescription | None:
    try:
        await asyncio.sleep(GATHER_SECONDS)
    finally:
        del reads.gathering[train]  # from here on, a new check waits for the next describe
    async with reads.slots:
        try:
            return await client.get_workflow_handle(train).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise


def _retrieve(read: asyncio.Task[WorkflowExecutionDescription | None]) -> None:
    """Every check that shared a failed describe was cancelled: its error was handed to none
    of them, and is no news to the event loop either."""
    if not read.cancelled():
        read.exception()
