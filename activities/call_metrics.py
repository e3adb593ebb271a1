"""Metrics of the activities' ECS calls, from botocore's own events: each call by operation,
each attempt ECS throttled, each retry botocore made, and how long each request waited for
the worker's ECS call budget (activities.aws.CallBudget).

Recorded with the running activity's metric meter (`activity.metric_meter()`: the worker's
Prometheus endpoint, labelled with the activity and workflow type); a call made outside an
activity (a test's, a tool's) records nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.hooks import BaseEventHooks
from botocore.retries.standard import RetryEventAdapter, ThrottlingErrorDetector
from temporalio import activity
from temporalio.common import MetricMeter

from ecs_canary.telemetry import ECS_BUDGET_WAIT, ECS_CALLS, ECS_RETRIES, ECS_THROTTLED, HELP

# botocore's own rule for what counts as throttling (its standard retry mode's).
_THROTTLING = ThrottlingErrorDetector(RetryEventAdapter())


def _meter() -> MetricMeter:
    return activity.metric_meter() if activity.in_activity() else MetricMeter.noop


def _operation(event_name: str) -> dict[str, str]:
    """`before-send.ecs.CreateService` -> {"operation": "CreateService"}."""
    return {"operation": event_name.rsplit(".", 1)[-1]}


def _called(event_name: str, **_: Any) -> None:
    _meter().create_counter(ECS_CALLS, HELP[ECS_CALLS]).add(1, _operation(event_name))


def _sent(event_name: str, request: Any, **_: Any) -> None:
    if request.context.get("retries", {}).get("attempt", 1) > 1:
        retries = _meter().create_counter(ECS_RETRIES, HELP[ECS_RETRIES])
        retries.add(1, _operation(event_name))


def _answered(event_name: str, **kwargs: Any) -> None:
    if _THROTTLING.is_throttling_error(**kwargs):
        throttled = _meter().create_counter(ECS_THROTTLED, HELP[ECS_THROTTLED])
        throttled.add(1, _operation(event_name))


def count_ecs_calls(events: BaseEventHooks) -> None:
    """Count the calls, retries and throttled answers of an ECS client (its `meta.events`)."""
    events.register("before-call.ecs", _called)
    events.register("before-send.ecs", _sent)
    events.register("needs-retry.ecs", _answered)


def timed_budget(acquire: Callable[..., None]) -> Callable[..., None]:
    """The budget's before-send hook, recording how long each request waited in it."""

    def acquire_timed(event_name: str = "", **kwargs: Any) -> None:
        arrived = time.monotonic()
        acquire(event_name, **kwargs)
        waits = _meter().create_histogram_float(ECS_BUDGET_WAIT, HELP[ECS_BUDGET_WAIT], unit="s")
        waits.record(time.monotonic() - arrived, _operation(event_name))

    return acquire_timed
