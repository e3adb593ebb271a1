"""The threads a worker runs workflow activations on: a few, and the activations someone is
waiting for first.

The SDK runs each activation on its `workflow_task_executor`, by default a thread pool with one
thread per workflow task slot (1,000 here, worker.WORKFLOW_TASK_SLOTS). Workflow code holds the
GIL from start to end, so threads add no throughput; they only share it. When a release train's
wave starts hundreds of deployments on a worker, their activations all run at once, each gets
the GIL for 5 ms in turn (`sys.getswitchinterval()`), and a short activation queued among them
(the train's own next step, or a `status` query, which Temporal holds until the run's workflow
task in flight completes) finishes only after seconds: the train's `status` took up to 3.4 s at
1,000 services (README, "A train of 1,000").

Here a few threads take the queued activations in order of who waits for them:
1. an activation that only answers queries (a person or a client is waiting for it);
2. a release train's (hundreds of deployments wait on the train's next step);
3. the rest, first come first served.

The SDK's deadlock detector measures an activation from the moment it is handed to the pool, so
a long queue counts against it as it did when the same activations shared the GIL: the total
work is the same, only its order changes.
"""

from __future__ import annotations

import itertools
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ecs_canary.names import TRAIN_WORKFLOW_TYPE

# Threads that run activations: more than one, so that one long activation (a replay of a
# flooded history takes most of a second) does not hold up the others; few, so that each one
# queued gets the GIL when its turn comes.
ACTIVATION_THREADS = 4

QUERY_ONLY, TRAIN, OTHER = 0, 1, 2
# The pool's stop sentinel (None) is taken after every queued activation, as in a plain pool.
_STOP = 3


def activation_priority(fn: Callable[..., Any], args: tuple[Any, ...]) -> int:
    """Where an activation handed to the pool (the SDK's `_RunningWorkflow.activate`, with the
    activation as its one argument) goes in the queue; anything else is OTHER."""
    activation = args[0] if args else None
    jobs = getattr(activation, "jobs", None)
    if jobs and all(job.HasField("query_workflow") for job in jobs):
        return QUERY_ONLY
    get_info = getattr(getattr(fn, "__self__", None), "get_info", None)
    if get_info is not None and get_info().workflow_type == TRAIN_WORKFLOW_TYPE:
        return TRAIN
    return OTHER


class _WaitersFirst:
    """The pool's work queue (the parts of `queue.SimpleQueue` a ThreadPoolExecutor uses): by
    `activation_priority`, then in arrival order."""

    def __init__(self) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._arrivals = itertools.count()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        priority = _STOP if item is None else activation_priority(item.fn, item.args)
        self._queue.put((priority, next(self._arrivals), item))

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        return self._queue.get(block, timeout)[2]

    def get_nowait(self) -> Any:
        return self._queue.get_nowait()[2]


class ActivationPool(ThreadPoolExecutor):
    """The worker's `workflow_task_executor`: ACTIVATION_THREADS threads, waiters first."""

    def __init__(self, threads: int = ACTIVATION_THREADS) -> None:
        super().__init__(max_workers=threads, thread_name_prefix="workflow_activation_")
        # ThreadPoolExecutor hands every submitted item to its threads through `_work_queue`.
        self._work_queue = _WaitersFirst()  # type: ignore[assignment]
