"""What every waiting activity shares: its log context, the poll clock and its heartbeats."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import structlog
from temporalio import activity

from activities.cancellation import raise_if_cancelled
from ecs_canary.models import Stage


class Located(Protocol):
    """Where an activity works: every per-service input has these, whatever its base model
    (RegisterTaskDefinitionInput is not a ServiceLocation, but is logged the same way)."""

    @property
    def cluster(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def stage(self) -> Stage: ...


def activity_logger(location: Located | None = None) -> structlog.stdlib.BoundLogger:
    info = activity.info()
    log = structlog.get_logger("ecs_canary.activities").bind(
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity=info.activity_type,
        attempt=info.attempt,
    )
    if location is not None:
        log = log.bind(
            cluster=location.cluster, service=location.service, stage=location.stage.value
        )
    return log


def sleep_until_next_poll(interval_seconds: float, not_before: float = 0.0) -> None:
    """Sleep to the next multiple of the interval on the wall clock (and not before
    `not_before`, a time.time()), so that concurrent waits poll together and share
    DescribeServices calls; wake at once if cancelled."""
    now = time.time()
    wake = (max(now, not_before) // interval_seconds + 1) * interval_seconds
    activity.wait_for_cancelled_sync(timeout=wake - now)  # returns None either way
    raise_if_cancelled("the wait")


def first_useful_poll(interval_seconds: float) -> float:
    """When a wait that starts right after an ECS change should look first: a full interval on,
    since no deployment or deletion settles sooner; looking earlier spends a call for nothing."""
    return time.time() + interval_seconds


# The wait whose activity runs on this thread, if any (see keep_alive).
_current = threading.local()


class Heartbeats:
    """A wait's heartbeats: at once when its details change (a retry must not log the same ECS
    events again), otherwise every quarter of the heartbeat timeout to show it is alive. Each
    heartbeat costs the worker a hop to its event loop, so not every poll needs one."""

    def __init__(self) -> None:
        info = activity.info()
        timeout = info.heartbeat_timeout
        self._every = timeout.total_seconds() / 4 if timeout else 0.0
        self._last_at = float("-inf")
        # A retried attempt starts from the details its predecessor saved, so a heartbeat it
        # sends while held up before its first look (keep_alive) keeps them, not blanks them.
        self._last_details: Any = info.heartbeat_details[0] if info.heartbeat_details else None
        _current.wait = (info.task_token, self)

    def beat(self, details: Any = None) -> None:
        now = time.monotonic()
        if details == self._last_details and now - self._last_at < self._every:
            return
        activity.heartbeat(*(() if details is None else (details,)))
        self._last_at, self._last_details = now, details

    def again(self) -> None:
        """The last details once more, if a heartbeat is due: the wait is alive, only held up."""
        self.beat(self._last_details)


def keep_alive() -> None:
    """Called while a thread is held up outside its activity's own loop (queued for the ECS
    budget, or for a DescribeServices another wait makes), once a CallBudget.CHECK_IN_SECONDS
    and with no lock held: one of the points where a cancelled activity stops (see
    activities.cancellation). A wait held there longer than its heartbeat timeout would
    otherwise be declared dead and retried, which costs more ECS calls at the moment they are
    scarcest, so a wait's heartbeat is sent too; code that is not a wait's sends none."""
    if not activity.in_activity():
        return
    raise_if_cancelled()
    current = getattr(_current, "wait", None)
    if current is None:
        return
    token, heartbeats = current
    if activity.info().task_token == token:  # not a wait an earlier activity on this thread ran
        heartbeats.again()
