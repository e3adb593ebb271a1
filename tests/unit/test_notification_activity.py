"""The notification activity against a local receiver (no Temporal server): what it posts and
with which key, where a secret URL comes from, and which failures Temporal should retry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notifications import _retry_after, _without_url, send_notification
from ecs_canary.notification_messages import NotificationInput
from ecs_canary.notifications import Notification
from tests.helpers import free_port, webhook_receiver
from tests.helpers.statuses import finished_status

SECRET_PATH = "/services/T0AB12CD3/B0AB12CD3/q8dsa9d8a7sd9a8sd7a9sd8a"
STATUS = finished_status("cancelled", "the workflow was cancelled")


def _environment(attempt: int = 1) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="send_notification",
        attempt=attempt,
        workflow_id="ecs-canary/prod/myapp",
        workflow_run_id="run-1",
        workflow_namespace="default",
    )
    return env


def _input(notification: Notification, index: int = 0) -> NotificationInput:
    return NotificationInput(
        notification=notification,
        target_index=index,
        event="finished",
        at=datetime(2026, 3, 4, 14, 0, tzinfo=UTC),
        status=STATUS,
    )


async def _refusal(request: NotificationInput, attempt: int = 1) -> ApplicationError:
    with pytest.raises(ApplicationError) as raised:
        await _environment(attempt).run(send_notification, request)
    return raised.value


async def test_it_posts_once_with_an_idempotency_key_per_run_event_and_target(monkeypatch):
    monkeypatch.setenv("TEMPORAL_UI_URL", "https://temporal.example/")
    with webhook_receiver() as receiver:
        outcome = await _environment().run(
            send_notification, _input(Notification(url=receiver.url(), format="slack"), index=2)
        )

    (posted,) = receiver.received
    assert (outcome.status_code, outcome.attempts) == (200, 1)
    assert posted.path == "/hook"
    assert posted.headers["idempotency-key"] == "ecs-canary/prod/myapp/run-1/finished/2"
    assert posted.headers["content-type"] == "application/json"
    assert posted.body["text"] == "myapp: the deployment was cancelled"
    link = (
        "<https://temporal.example/namespaces/default/workflows/ecs-canary%2Fprod%2Fmyapp/run-1"
        "/history|Open the run in the Temporal Web UI>"
    )
    assert any(link in block.get("text", {}).get("text", "") for block in posted.body["blocks"])


async def test_url_env_is_read_from_the_workers_environment(monkeypatch):
    with webhook_receiver() as receiver:
        monkeypatch.setenv("ECS_CANARY_WEBHOOK_DEPLOYS", receiver.url(SECRET_PATH))
        await _environment().run(
            send_notification, _input(Notification(url_env="ECS_CANARY_WEBHOOK_DEPLOYS"))
        )

    (posted,) = receiver.received
    assert posted.path == SECRET_PATH
    assert posted.body["event"] == "finished"
    assert posted.body["status"] == STATUS.model_dump(mode="json")


async def test_a_missing_variable_fails_for_good_and_says_how_to_fix_it(monkeypatch):
    monkeypatch.delenv("ECS_CANARY_WEBHOOK_DEPLOYS", raising=False)
    error = await _refusal(_input(Notification(url_env="ECS_CANARY_WEBHOOK_DEPLOYS")))

    assert error.non_retryable and error.type == "NotificationUrlMissing"
    assert "no environment variable ECS_CANARY_WEBHOOK_DEPLOYS" in error.message
    assert "set it to the webhook URL" in error.message


async def test_a_variable_that_is_no_url_fails_for_good_without_showing_it(monkeypatch):
    monkeypatch.setenv("ECS_CANARY_WEBHOOK_DEPLOYS", "hooks.example/secret-token-123456789")
    error = await _refusal(_input(Notification(url_env="ECS_CANARY_WEBHOOK_DEPLOYS")))

    assert error.non_retryable and error.type == "NotificationUrlInvalid"
    assert (
        error.message
        == "the worker's $ECS_CANARY_WEBHOOK_DEPLOYS must start with http:// or https://"
    )


async def test_a_5xx_is_raised_for_temporal_to_retry_with_the_attempt_number():
    with webhook_receiver() as receiver:
        receiver.respond = lambda _request: 500
        error = await _refusal(_input(Notification(url=receiver.url())), attempt=3)

    assert len(receiver.answered(500)) == 1
    assert not error.non_retryable and error.type == "NotificationFailed"
    assert error.message == f"{receiver.url()} answered HTTP 500: receiver unavailable"
    assert error.details == (3,)


async def test_a_4xx_is_not_retried():
    with webhook_receiver() as receiver:
        receiver.respond = lambda _request: 400
        error = await _refusal(_input(Notification(url=receiver.url())))

    assert error.non_retryable and error.type == "NotificationRefused"
    assert "answered HTTP 400" in error.message


async def test_no_answer_is_retried_and_never_shows_a_secret_url(monkeypatch):
    secret = f"http://127.0.0.1:{free_port()}{SECRET_PATH}"  # nothing listens there
    monkeypatch.setenv("ECS_CANARY_WEBHOOK_DEPLOYS", secret)
    error = await _refusal(_input(Notification(url_env="ECS_CANARY_WEBHOOK_DEPLOYS")))

    assert not error.non_retryable and error.type == "NotificationFailed"
    assert error.message.startswith("$ECS_CANARY_WEBHOOK_DEPLOYS did not answer: ConnectError")
    assert SECRET_PATH not in error.message


def test_a_receivers_retry_after_is_honoured_up_to_a_minute():
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert _retry_after(answer("7")) == timedelta(seconds=7)
    assert _retry_after(answer("3600")) == timedelta(seconds=60)
    assert _retry_after(answer("Wed, 21 Oct 2015 07:28:00 GMT")) is None


def test_a_transport_error_never_shows_the_url_or_its_tokens():
    url = f"https://hooks.example{SECRET_PATH}?token=abc123"
    text = f"Connection to {url} failed; sent GET {SECRET_PATH}?token=abc123"
    assert _without_url(text, url, "$HOOK") == "Connection to $HOOK failed; sent GET ***?***"
