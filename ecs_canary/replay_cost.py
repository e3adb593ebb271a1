"""What a worker does once, at start, so that replaying a long history costs less: a worker
that did not have a run in its cache (it was restarted, or the run was evicted) replays the
whole history before it answers `status` or takes the run's next step.

A history flooded with refused signals (issue 23: 10,000 of them, all in one workflow task when
they poured in faster than the worker took them) is replayed as one activation that makes
tens of thousands of short-lived objects: the SDK's task per signal handler, each payload
decoded, each refused attempt. Python's cyclic garbage collector runs every few hundred of
them, and each of its full collections walks every object the process holds, above all the
~100,000 the imports made (boto3's service models, pydantic's schemas, the SDK's protobuf
classes), which never become garbage. Measured on a fresh worker answering `status` for
10,000 refused signals on 2 cores: 0.27-0.43 s of a 0.7-1.0 s activation went to the
collector; with the startup heap frozen, 0.07-0.10 s of 0.5 s. The SDK fails an activation
that runs longer than 2 s (its deadlock detector), and then the run's workflow task fails
until a retry fits: the margin matters on a loaded machine.
"""

from __future__ import annotations

import gc

# Net allocations between two collections of the young generation (Python's default: 700), and
# how many collections of each generation before one of the next (Python's: 10 and 10).
YOUNG_COLLECTION_EVERY = 20_000
_MIDDLE_EVERY_YOUNG = 20
_OLD_EVERY_MIDDLE = 20


def freeze_startup_heap() -> None:
    """Move every object alive now (modules, classes, service models) out of the collector's
    reach (`gc.freeze`): they stay alive for the life of the process anyway, and the
    collections that replays trigger then walk only what the runs made; and collect the young
    generation less often (`YOUNG_COLLECTION_EVERY`). Called once, when the worker has built
    everything it keeps and before it polls."""
    gc.collect()  # garbage of the startup itself is freed, not frozen
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, _MIDDLE_EVERY_YOUNG, _OLD_EVERY_MIDDLE)
