"""How the deployment workflow calls activities: one named policy per kind of call, and the
helpers that end a call (or a side task) cleanly when the run is cancelled.

Every activity the workflow starts takes its options from a policy here, built on the SDK's
own `ActivityConfig` / `LocalActivityConfig`:

- **An AWS call** (`Calls.call`: ECS describe, register, create, update, delete; the listener
  rule's and the scalable target's calls) runs as a local activity in the workflow task that
  asks for it: no round trip through the server per call. It is shielded: a cancelled run
  still waits for the call's answer, so no change to AWS is abandoned midway and no cleanup
  races it. botocore retries transient errors inside one attempt; Temporal retries the attempt
  within the rollback stage's time.
- **A wait** (minutes of polling) is an activity task that heartbeats, bounded by its stage's
  timeout, so a dead worker's wait moves to another worker where it stopped.
- **A watch** (the alarms) heartbeats until it finds something or is cancelled.
- **A verification step** enforces its own timeout and cleans up after itself; a check of the
  user's own is a child workflow, cancelled with the run.
- **An analysis interval's judgement** reads CloudWatch and judges, retried while CloudWatch is
  unavailable for a while: a local activity too, so a dead worker's judgement moves on with
  the workflow task within seconds.
- **The start checks, a decision check and a notification** have fixed policies of their own,
  as have a release train's reads of its deployments' runs and a deployment's check of a
  message from its train and its reports to it (`train_message`).

Every call keeps the SDK's typed signature: the activity method decides the argument and
result types.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    TimeoutError,
)
from temporalio.workflow import (
    ActivityCancellationType,
    ActivityConfig,
    ChildWorkflowConfig,
    LocalActivityConfig,
    ParentClosePolicy,
)

with workflow.unsafe.imports_passed_through():
    from ecs_canary.models import DeploymentRequest

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")

# What a failed local activity raises: the SDK hands over its error as the activity raised it
# (an ApplicationError, or a TimeoutError once its time is spent), not wrapped in an
# ActivityError as it does for an activity task. Catching ActivityError alone let a token check
# whose keys could not be read fail the decision's handler, and with a signal the run.
LOCAL_ACTIVITY_FAILED = (ActivityError, ApplicationError, TimeoutError)

# One AWS request per attempt: botocore has already retried transient errors inside it.
_CALL_TIMEOUT = timedelta(seconds=60)
# A wait heartbeats every poll and the worker sends the latest heartbeat every couple of
# seconds; a busy worker (a hundred deployments on two cores) can be a few seconds late, and a
# wait timed out for that polls twice from then on. A dead worker's wait moves on after this.
_MIN_HEARTBEAT_TIMEOUT = 10.0
_HEARTBEATS_PER_TIMEOUT = 3
# A cancelled wait or step is over: another attempt would only be cancelled again.
_NOT_AFTER_A_CANCEL = RetryPolicy(non_retryable_error_types=["CancelledError"])
# A watch runs until it finds something or is cancelled.
_WATCH_LIMIT = timedelta(days=365)
# A step activity enforces its own timeout (and cleans up after itself); the activity's own
# limit is a little longer, for that cleanup.
_STEP_CLEANUP_MARGIN = timedelta(seconds=60)
# A run's history holds these events when its first workflow task begins (started, task
# scheduled, task started); more mean an earlier attempt of that task may have begun its calls.
_FIRST_TASK_HISTORY_LENGTH = 3

# How long one notification is retried: long enough to ride out a receiver's restart, short
# enough that a later event to the same receiver is not held back for long.
DELIVERY_LIMIT = timedelta(minutes=2)
_DELIVERY_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# A decision's check by the worker: reading a JWKS file takes milliseconds; an IdP's JWKS URL
# gets a few tries within the total.
_DECISION_CHECK_RETRIES = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=1))

# A train's message checked with its memo: asked again soon, while the deployment waits.
_TRAIN_CHECK_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5)
)


# Each policy takes the call's summary, the line the Web UI and `temporal workflow show` give
# the call: the SDK takes it among the options.


def start_checks(summary: str) -> LocalActivityConfig:
    """The run's first command: which search attributes the namespace lacks, and the
    worker's signing policy. Not an AWS call, but as quick as one: a local activity."""
    return {"start_to_close_timeout": timedelta(seconds=30), "summary": summary}


def decision_check(summary: str) -> LocalActivityConfig:
    """A decision's check by the worker (a token's verification), a local activity."""
    return {
        "start_to_close_timeout": timedelta(seconds=15),
        "schedule_to_close_timeout": timedelta(seconds=45),
        "retry_policy": _DECISION_CHECK_RETRIES,
        "summary": summary,
    }


def notification_delivery(summary: str) -> ActivityConfig:
    """One notification, retried for at most `DELIVERY_LIMIT`; one attempt is ended by the
    activity's own HTTP timeouts well before its 30 seconds."""
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "schedule_to_close_timeout": DELIVERY_LIMIT,
        "retry_policy": _DELIVERY_RETRIES,
        "summary": summary,
    }


def judge_interval(summary: str) -> LocalActivityConfig:
    """One analysis interval's judgement: one GetMetricData request per attempt (botocore
    retries transient errors inside it) and the judge; CloudWatch unavailable for 10 minutes
    fails the interval, and with it the analysis. A local activity, inside the workflow task
    that asks for it: as an activity task with no heartbeat, a worker killed while judging held
    the analysis up for the attempt's whole timeout (a minute)."""
    return {
        "start_to_close_timeout": _CALL_TIMEOUT,
        "schedule_to_close_timeout": timedelta(minutes=10),
        "summary": summary,
    }


def train_reads_runs(summary: str) -> ActivityConfig:
    """The train reading its deployments' runs from Temporal (which are running, how each
    ended): describes and results, a few at a time, each answered in milliseconds."""
    return {"start_to_close_timeout": timedelta(minutes=5), "summary": summary}


def train_message(summary: str) -> LocalActivityConfig:
    """A deployment's exchange with its train: confirming with the train's memo that the train
    sent a message (a describe), or reporting to it (a signal sent as a client's); each is
    answered in milliseconds, and one that fails (the frontend busy) is tried again for up to
    15 minutes. A message not confirmed is not taken."""
    return {
        "start_to_close_timeout": timedelta(seconds=30),
        "schedule_to_close_timeout": timedelta(minutes=15),
        "retry_policy": _TRAIN_CHECK_RETRIES,
        "summary": summary,
    }


def check_workflow(
    workflow_id: str, task_queue: str, timeout_seconds: float, summary: str
) -> ChildWorkflowConfig:
    """A verification step's check workflow (the user's own, on their task queue): bounded by
    the step's timeout, and asked to cancel when the run closes."""
    return {
        "id": workflow_id,
        "task_queue": task_queue,
        "execution_timeout": timedelta(seconds=timeout_seconds),
        "parent_close_policy": ParentClosePolicy.REQUEST_CANCEL,
        "static_summary": summary,
    }


class CallPolicies:
    """The policies that depend on the request: how long an AWS call is retried (the rollback
    stage's time) and how often a long activity must heartbeat (its poll interval)."""

    def __init__(self, request: DeploymentRequest) -> None:
        self._retried_for = timedelta(seconds=request.stage_timeouts.rollback)
        self._heartbeat_timeout = timedelta(
            seconds=max(
                _MIN_HEARTBEAT_TIMEOUT, _HEARTBEATS_PER_TIMEOUT * request.poll_interval_seconds
            )
        )

    def aws_call(self, summary: str) -> LocalActivityConfig:
        """One AWS call as a local activity."""
        return {
            "start_to_close_timeout": _CALL_TIMEOUT,
            "schedule_to_close_timeout": self._retried_for,
            "summary": summary,
        }

    def wait(self, timeout_seconds: float, summary: str) -> ActivityConfig:
        """A heartbeating wait bounded by its stage's timeout; retried on another worker from
        its last heartbeat, never after it was cancelled."""
        timeout = timedelta(seconds=timeout_seconds)
        return {
            "start_to_close_timeout": timeout,
            "schedule_to_close_timeout": timeout,
            "heartbeat_timeout": self._heartbeat_timeout,
            "retry_policy": _NOT_AFTER_A_CANCEL,
            "summary": summary,
        }

    def watch(self, summary: str) -> ActivityConfig:
        """A watch: a cancel waits for it to stop, so none outlives its deployment."""
        return {
            "start_to_close_timeout": _WATCH_LIMIT,
            "heartbeat_timeout": self._heartbeat_timeout,
            "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "summary": summary,
        }

    def verification_step(self, timeout_seconds: float, summary: str) -> ActivityConfig:
        """A step activity: its own limit adds time for the step's cleanup, and a cancel
        waits for that cleanup (test tasks stopped) before the canary is deleted."""
        limit = timedelta(seconds=timeout_seconds) + _STEP_CLEANUP_MARGIN
        return {
            "start_to_close_timeout": limit,
            "schedule_to_close_timeout": limit,
            "heartbeat_timeout": self._heartbeat_timeout,
            "retry_policy": _NOT_AFTER_A_CANCEL,
            "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "summary": summary,
        }


class Calls:
    """A run's way of calling activities, each kind with its policy."""

    def __init__(self, request: DeploymentRequest) -> None:
        self.policies = CallPolicies(request)
        # Set by the run's first activation (`calls_may_repeat`): whether a change to AWS may
        # repeat one an earlier worker made, so that the change looks before it is made.
        self.may_repeat = False

    async def call(
        self, activity: Callable[[Any, ArgT], ResultT], arg: ArgT, *, summary: str
    ) -> ResultT:
        """One AWS call inside this workflow task, shielded from the run's cancellation."""
        call = asyncio.ensure_future(
            workflow.execute_local_activity_method(
                activity, arg, **self.policies.aws_call(summary)
            )
        )
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            await settle(call)
            raise

    async def wait(
        self,
        activity: Callable[[Any, ArgT], ResultT],
        arg: ArgT,
        *,
        timeout_seconds: float,
        summary: str,
    ) -> ResultT:
        """A heartbeating wait bounded by its stage's timeout."""
        return await plain_cancel(
            workflow.execute_activity_method(
                activity, arg, **self.policies.wait(timeout_seconds, summary)
            )
        )

    def watch(
        self, activity: Callable[[Any, ArgT], ResultT], arg: ArgT, *, summary: str
    ) -> asyncio.Task[ResultT]:
        """A watch that runs until it finds something or is cancelled."""
        return workflow.start_activity_method(
            activity, arg, **self.policies.watch(summary)
        )


# --- Ending calls and side tasks ------------------------------------------------------------


async def settle(task: asyncio.Future[Any]) -> None:
    """Wait for a side task that was cancelled or is no longer needed; its outcome no longer
    matters, only that nothing it started outlives this point.

    Called from a `finally` while the run's coroutines are being closed (the worker dropped
    the run from its cache, or a terminated run is collected), it returns at once: a coroutine
    that awaits while it is closed "ignores GeneratorExit", which Python reports as an error
    and which can crash the interpreter as it exits."""
    if isinstance(sys.exc_info()[1], GeneratorExit):
        return
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await task


async def abandoned_when(condition: Callable[[], bool], step: Awaitable[None]) -> None:
    """Run a step (a wait), abandoning it, cancelled and settled, as soon as `condition()`
    holds (someone rejected the canary) or the run is cancelled."""
    task = asyncio.ensure_future(step)
    try:
        await workflow.wait_condition(lambda: task.done() or condition())
    finally:
        if not task.done():
            task.cancel()
            await settle(task)
    if not task.cancelled():
        task.result()


async def together(*steps: Awaitable[Any]) -> None:
    """Run steps side by side (the canary's and the baseline's). The first failure (or a
    cancel) cancels the others, and is raised once they have settled: nothing one of them
    started outlives this point, so no cleanup races a call still in flight."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
                await settle(task)


def calls_may_repeat() -> bool:
    """Whether a single AWS call of this run may repeat one an earlier worker already made
    (taken at the run's first activation): a run rebuilt from its history (another worker
    took it over, or this one evicted it), or one whose first task was begun before, since a
    local activity's attempts start over on the worker that takes over."""
    return (
        workflow.unsafe.is_replaying()
        or workflow.info().get_current_history_length() > _FIRST_TASK_HISTORY_LENGTH
    )


def was_cancelled(err: ActivityError | ChildWorkflowError) -> bool:
    """An activity or child workflow that ended because it was cancelled."""
    return isinstance(err.cause, CancelledError)


async def plain_cancel(activity: Awaitable[ResultT]) -> ResultT:
    """A cancelled activity task means this run (or this wait) was cancelled: say it with
    asyncio's own CancelledError, as every other await in the workflow does."""
    try:
        return await activity
    except ActivityError as err:
        if was_cancelled(err):
            raise asyncio.CancelledError() from err
        raise
