"""The workflow's side of notifications: send in the background, never in the deployment's way.

`Notifier.send(event, status)` starts one `send_notification` activity per receiver that asked
for the event, as an asyncio task beside the run, and returns at once: a slow or dead receiver
never delays a stage, and a failed notification never fails the run. Temporal retries each one
(`workflows.calls.notification_delivery`, for at most `DELIVERY_LIMIT`); one that still fails
is logged and shown in `status` (the run's `state.notifications`). Each receiver gets its
events in order: an event waits until the one before it to the same receiver was delivered or
given up.

At the very end, `finish()` waits for what is still on its way, at most `FINAL_WAIT`, so that
`finished` reaches a healthy receiver before the run closes, while a dead one holds the run no
longer than that; what is still undelivered then is recorded as failed.

Each event is sent at most once per run (a second `send` of it does nothing), matching the
activity's idempotency key. A request without notifications schedules nothing: not an activity,
not a timer, so the histories of runs without them are unchanged.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities.notifications import send_notification
    from ecs_canary.models import DeploymentStatus
    from ecs_canary.notification_messages import GateFacts, NotificationInput
    from ecs_canary.notifications import (
        DeliveryState,
        Notification,
        NotificationEvent,
        NotificationState,
    )
    from ecs_canary.request import VerificationSettings
    from ecs_canary.text import duration_text
    from ecs_canary.train import TrainStatus
    from workflows.calls import DELIVERY_LIMIT, notification_delivery
    from workflows.run_part import RunContext

_LIMIT_TEXT = duration_text(DELIVERY_LIMIT.total_seconds())
# How long the end of a run waits for notifications still on their way (`finished` above all).
FINAL_WAIT = timedelta(seconds=15)


@dataclass(frozen=True)
class Receivers:
    """Whom a run notifies (`notifications`), where it records each delivery (`states`, which
    its `status` shows), its gate's settings (for gate_open) and what its log lines carry: a
    deployment's (`of_run`) or a release train's."""

    notifications: list[Notification]
    states: list[NotificationState]
    gate_settings: VerificationSettings
    log_context: Callable[[], dict[str, Any]]

    @classmethod
    def of_run(cls, run: RunContext) -> Receivers:
        request = run.request
        return cls(
            request.notifications, run.state.notifications, request.verification, run.log_context
        )


class Notifier:
    """A run's notifications: what was sent to whom, and how it went."""

    def __init__(self, run: RunContext | Receivers) -> None:
        self._receivers = run if isinstance(run, Receivers) else Receivers.of_run(run)
        self._sent: set[tuple[NotificationEvent, str | None]] = set()
        if isinstance(run, RunContext):  # a deployment's, continued as new: sent already
            self._sent = {(state.event, None) for state in run.state.notifications}
        # Per receiver (by index), its latest delivery: the next event waits for it.
        self._latest: dict[int, asyncio.Task[None]] = {}

    def send(
        self,
        event: NotificationEvent,
        status: DeploymentStatus | TrainStatus,
        wave: str | None = None,
    ) -> None:
        """Queue `event` for every receiver that asked for it; returns at once. `status` is
        the run's status at the event (for gate_open, its `gate_deadline` says when the gate
        decides by itself); a release train's gate opens and decides once per `wave`."""
        if (event, wave) in self._sent:
            return
        self._sent.add((event, wave))
        now = workflow.now()
        gate = self._gate_facts(status.gate_deadline) if event == "gate_open" else None
        for index, notification in enumerate(self._receivers.notifications):
            if event not in notification.events:
                continue
            state = NotificationState(
                event=event, target_index=index, target=notification.target, queued_at=now
            )
            self._receivers.states.append(state)
            request = NotificationInput(
                notification=notification,
                target_index=index,
                event=event,
                at=now,
                status=status,
                gate=gate,
                wave=wave,
            )
            earlier = self._latest.get(index)
            self._latest[index] = asyncio.ensure_future(self._deliver(request, state, earlier))

    async def finish(self, bound: timedelta = FINAL_WAIT) -> None:
        """Wait for the deliveries still on their way, at most `bound`; then record what is
        still undelivered as failed (the run is about to close, and its activities with it)."""
        if self.idle:
            return
        try:
            await workflow.wait_condition(
                lambda: self.idle,
                timeout=bound,
                timeout_summary=f"Notifications: wait up to {duration_text(bound.total_seconds())}",
            )
        except builtins.TimeoutError:
            for state in self._receivers.states:
                if state.state == "pending":
                    waited = round((workflow.now() - state.queued_at).total_seconds())
                    self._settle(
                        state,
                        "failed",
                        state.attempts,
                        f"not delivered when the deployment finished ({duration_text(waited)} "
                        "after it was queued; still being retried, or waiting for an earlier "
                        "notification to the same receiver)",
                    )

    async def _deliver(
        self,
        request: NotificationInput,
        state: NotificationState,
        earlier: asyncio.Task[None] | None,
    ) -> None:
        """One event to one receiver, after the receiver's earlier event; never raises, so
        nothing about a notification can end the run."""
        try:
            if earlier is not None:
                await earlier
            outcome = await workflow.execute_activity(
                send_notification,
                request,
                **notification_delivery(f"Notify {request.event} ({state.target})"),
            )
        except Exception as err:  # ActivityError, or anything else: the run goes on
            error, attempts = delivery_failure(err)
            self._settle(state, "failed", attempts, error)
        except asyncio.CancelledError:
            self._settle(state, "failed", state.attempts, "cancelled before it was delivered")
            raise
        else:
            self._settle(state, "sent", outcome.attempts, None)

    def _settle(
        self, state: NotificationState, result: DeliveryState, attempts: int, error: str | None
    ) -> None:
        if state.state != "pending":
            return
        state.state, state.attempts, state.error = result, attempts, error
        state.settled_at = workflow.now()
        if result == "failed":
            workflow.logger.warning(
                f"Notification {state.event} to {state.target} failed"
                + (f" after {attempts} attempt(s)" if attempts else "")
                + f": {error}",
                extra=self._receivers.log_context(),
            )

    @property
    def idle(self) -> bool:
        """Nothing is on its way (a run may continue as new without losing a delivery)."""
        return all(task.done() for task in self._latest.values())

    def _gate_facts(self, deadline: datetime | None) -> GateFacts:
        settings = self._receivers.gate_settings
        return GateFacts(
            deadline=deadline,
            timeout_seconds=settings.timeout_seconds,
            on_timeout=settings.on_timeout,
            min_approvals=settings.min_approvals,
            approvers=settings.approvers,
        )


def delivery_failure(err: BaseException) -> tuple[str, int]:
    """(why, attempts) of a notification that was given up: the activity's last error (it
    carries its attempt number), found under Temporal's ActivityError and, where the server
    keeps it, under the timeout that ended the retries; said to be the last of many when the
    retries ran out of time rather than meeting a final answer."""
    retries_ran_out = isinstance(err, ActivityError) and err.retry_state in (
        RetryState.TIMEOUT,
        RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    prefix = f"still failing after {_LIMIT_TEXT}: " if retries_ran_out else ""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ApplicationError):
            attempt = cause.details[0] if cause.details else 0
            return prefix + cause.message, attempt if isinstance(attempt, int) else 0
        cause = cause.cause if isinstance(cause, FailureError) else None
    if retries_ran_out:
        return f"not delivered within {_LIMIT_TEXT}", 0
    return f"{type(err).__name__}: {err}", 0
