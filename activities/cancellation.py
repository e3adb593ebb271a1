"""The rule for cancelling this worker's activities: only at the points an activity chooses.

By default the Temporal SDK cancels a sync activity by raising CancelledError in its thread,
asynchronously, at whatever bytecode the thread runs: inside a `threading.Condition`, between
a logging handler's `acquire()` and its `try`, inside the ECS call budget's lock or urllib3's
connection pool. A lock taken there is never released, and every thread that logs or waits for
it stops; the event loop logs too, so the whole worker hangs (issue 21).

So every sync activity is declared with `sync_activity` instead of `activity.defn`: the SDK
then only sets the activity's cancelled flag, and the activity raises CancelledError itself
(`raise_if_cancelled`) where nothing is held. Those points are few:
- a wait's sleep until its next poll (`activities.polling.sleep_until_next_poll`);
- a verification step's sleep (`activities.steps.common.StepClock.sleep`);
- a caller held up in the ECS budget's queue or by a DescribeServices another wait makes
  (`activities.polling.keep_alive`, called there once a second, outside every lock);
- every attempt of an AWS request, before it is sent (`stop_before_request`): a cancelled
  activity makes no further request, nor botocore's retries of one.
Clean-up a cancelled activity still owes (a verification step stopping the tasks it started)
runs under `cleaning_up()`, which those points let through.
Between them an activity finishes what it is doing (at most an AWS request, bounded by
botocore's timeouts); the server drops a cancelled attempt's result.

Why not make the waits async activities (the SDK cancels those at an `await`)? Their boto3
calls would still run in threads, and a wait held up there (in the budget's queue, in a
describe batch) could no longer heartbeat: an async activity's heartbeat is sent from the event
loop, not from the thread. On 200 synthetic waits the async form cost 8-22% less worker CPU;
this rule made cancellation safe with no redesign, and the CPU cut is left for later.

Async activities (`send_notification`, `verify_decision`, `missing_search_attributes`) need
nothing: the SDK cancels them at an `await`, where no thread's lock is held. `worker_activities`
refuses a sync activity declared any other way (`check_cancelled_only_where_chosen`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import CancelledError

ActivityFunction = TypeVar("ActivityFunction", bound=Callable[..., Any])

# Set on a thread while it does the clean-up a cancelled activity still owes.
_cleaning_up = threading.local()


def sync_activity(fn: ActivityFunction) -> ActivityFunction:
    """`activity.defn` for a sync activity: cancelled only where it calls `raise_if_cancelled`
    (or a wait that does), never by an exception raised into its thread."""
    return activity.defn(no_thread_cancel_exception=True)(fn)


def raise_if_cancelled(what: str = "the activity") -> None:
    """Raise CancelledError if this activity was cancelled (and is not cleaning up); call only
    where no lock is held."""
    if activity.is_cancelled() and not getattr(_cleaning_up, "active", False):
        raise CancelledError(f"{what} was cancelled")


def stop_before_request(**_: Any) -> None:
    """botocore's before-send hook on every client of the worker: a cancelled activity's
    request (or retry) is not sent. Outside an activity (tests, tools) it does nothing."""
    if activity.in_activity():
        raise_if_cancelled()


@contextmanager
def cleaning_up() -> Iterator[None]:
    """Work that runs to its end even once the activity is cancelled."""
    _cleaning_up.active = True
    try:
        yield
    finally:
        _cleaning_up.active = False


def check_cancelled_only_where_chosen(activities: Iterable[Callable[..., Any]]) -> None:
    """Refuse (at the worker's start) a sync activity that the SDK would cancel anywhere."""
    for fn in activities:
        definition = activity._Definition.must_from_callable(fn)
        if not definition.is_async and not definition.no_thread_cancel_exception:
            raise TypeError(
                f"activity {definition.name} is sync: declare it with "
                "activities.cancellation.sync_activity (see that module for why)"
            )
