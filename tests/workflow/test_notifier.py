"""`Notifier` on the time-skipping server, with a fake `send_notification`: each receiver gets
its events once and in order, a failing receiver never holds a run past the final wait, a
notification that keeps failing is recorded with why, and no notifications schedule nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ecs_canary.notification_messages import NotificationInput, NotificationOutcome
from tests.helpers import wait_until
from tests.workflow.notifying import NotifyingWorkflow
from workflows.notifications import DELIVERY_LIMIT

HOOK = "http://127.0.0.1:9/hook"
SCHEDULED_OR_TIMED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
}


@dataclass
class FakeReceivers:
    """Stands in for the activity: records (event, target index, attempt) of every attempt and
    answers as `answer` says (return to deliver, raise to fail); an event in `held` waits for
    its asyncio.Event first."""

    calls: list[tuple[str, int, int]] = field(default_factory=list)
    answer: Callable[[NotificationInput, int], None] = lambda _request, _attempt: None
    held: dict[str, asyncio.Event] = field(default_factory=dict)

    def activity(self) -> Any:
        @activity.defn(name="send_notification")
        async def send_notification(request: NotificationInput) -> NotificationOutcome:
            attempt = activity.info().attempt
            self.calls.append((request.event, request.target_index, attempt))
            if request.event in self.held:
                await self.held[request.event].wait()
            self.answer(request, attempt)
            return NotificationOutcome(status_code=200, attempts=attempt)

        return send_notification


@pytest.fixture
def receivers() -> FakeReceivers:
    return FakeReceivers()


@pytest.fixture
async def notify(
    time_skipping: WorkflowEnvironment, receivers: FakeReceivers
) -> AsyncIterator[Callable[..., Any]]:
    task_queue = f"notifier-tests-{uuid.uuid4().hex[:8]}"
    async with Worker(
        time_skipping.client,
        task_queue=task_queue,
        workflows=[NotifyingWorkflow],
        activities=[receivers.activity()],
    ):

        async def start(
            notifications: list[dict[str, Any]], events: list[str], final_wait: float = 15
        ) -> WorkflowHandle[Any, list[dict[str, Any]]]:
            return await time_skipping.client.start_workflow(
                NotifyingWorkflow.run,
                {
                    "notifications": notifications,
                    "events": events,
                    "final_wait_seconds": final_wait,
                },
                id=f"notify-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )

        yield start


async def _events(handle: WorkflowHandle[Any, Any]) -> list[Any]:
    return [event async for event in handle.fetch_history_events()]


async def test_each_receiver_gets_its_events_once_and_in_order(notify, receivers):
    receivers.held["gate_open"] = asyncio.Event()
    handle = await notify(
        [
            {"url": HOOK},
            {"url_env": "ECS_CANARY_WEBHOOK_DEPLOYS", "events": ["gate_open", "finished"]},
        ],
        ["gate_open", "decided", "decided", "finished"],
    )
    await wait_until(lambda: len(receivers.calls) == 2)
    pending = await handle.query(NotifyingWorkflow.notifications)
    before_release = list(receivers.calls)
    receivers.held["gate_open"].set()
    states = await handle.result()

    # The receivers' later events waited for gate_open to be delivered.
    assert sorted(before_release) == [("gate_open", 0, 1), ("gate_open", 1, 1)]
    assert [(s["event"], s["state"]) for s in pending] == [
        ("gate_open", "pending"),
        ("gate_open", "pending"),
        ("decided", "pending"),
        ("finished", "pending"),
        ("finished", "pending"),
    ]
    assert [call for call in receivers.calls if call[1] == 0] == [
        ("gate_open", 0, 1),
        ("decided", 0, 1),
        ("finished", 0, 1),
    ]
    assert [call for call in receivers.calls if call[1] == 1][1:] == [("finished", 1, 1)]
    assert [(s["event"], s["target"], s["state"], s["attempts"]) for s in states] == [
        ("gate_open", HOOK, "sent", 1),
        ("gate_open", "$ECS_CANARY_WEBHOOK_DEPLOYS", "sent", 1),
        ("decided", HOOK, "sent", 1),
        ("finished", HOOK, "sent", 1),
        ("finished", "$ECS_CANARY_WEBHOOK_DEPLOYS", "sent", 1),
    ]


async def test_without_notifications_nothing_is_scheduled(notify, receivers):
    handle = await notify([], ["gate_open", "decided", "finished"])

    assert await handle.result() == []
    assert not receivers.calls
    assert not {event.event_type for event in await _events(handle)} & SCHEDULED_OR_TIMED


def _unavailable(request: NotificationInput, attempt: int) -> None:
    raise ApplicationError(f"{HOOK} answered HTTP 500: down", attempt, type="NotificationFailed")


async def test_a_failing_receiver_holds_the_run_no_longer_than_the_final_wait(notify, receivers):
    receivers.answer = _unavailable
    handle = await notify([{"url": HOOK}], ["gate_open", "decided", "finished"], final_wait=15)
    states = await handle.result()
    history = await _events(handle)

    took = history[-1].event_time.ToDatetime() - history[0].event_time.ToDatetime()
    assert took <= timedelta(seconds=16)
    assert len(receivers.calls) > 1 and {call[0] for call in receivers.calls} == {"gate_open"}
    assert [(s["event"], s["state"]) for s in states] == [
        ("gate_open", "failed"),
        ("decided", "failed"),
        ("finished", "failed"),
    ]
    assert states[0]["error"].startswith("not delivered when the deployment finished (15s after")


async def test_a_refused_notification_is_failed_with_the_answer_and_the_next_one_goes(
    notify, receivers, logs
):
    def refuse_gate_open(request: NotificationInput, attempt: int) -> None:
        if request.event == "gate_open":
            raise ApplicationError(
                f"{HOOK} answered HTTP 404: no such hook",
                attempt,
                type="NotificationRefused",
                non_retryable=True,
            )

    receivers.answer = refuse_gate_open
    states = await (await notify([{"url": HOOK}], ["gate_open", "finished"])).result()

    assert [(s["event"], s["state"], s["attempts"], s["error"]) for s in states] == [
        ("gate_open", "failed", 1, f"{HOOK} answered HTTP 404: no such hook"),
        ("finished", "sent", 1, None),
    ]
    assert any(
        line.startswith(f"Notification gate_open to {HOOK} failed after 1 attempt(s): ")
        for line in logs.lines()
    )


async def test_a_notification_still_failing_at_the_delivery_limit_says_why(notify, receivers):
    receivers.answer = _unavailable
    final_wait = (DELIVERY_LIMIT + timedelta(minutes=1)).total_seconds()
    states = await (await notify([{"url": HOOK}], ["finished"], final_wait=final_wait)).result()

    (state,) = states
    assert state["state"] == "failed"
    assert state["error"] == f"still failing after 2m: {HOOK} answered HTTP 500: down"
    assert state["attempts"] == receivers.calls[-1][2] > 1
