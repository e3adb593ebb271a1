"""The notification activity: one POST of one event to one receiver.

Retries are Temporal's (the workflow's retry policy, see `workflows.notifications`): an attempt
raises when the receiver may take the notification later (a 5xx, 408, 425 or 429, no answer,
a timeout) and fails for good when it never will (another 4xx, a redirect, a missing or bad
`url_env` variable). Every attempt of one event to one receiver carries the same
`Idempotency-Key` (`<workflow id>/<run id>/<event>/<target index>`), so a receiver that got
an attempt whose answer was lost can drop the repeat.

An async activity: a POST is waiting on the network, so it takes no thread from the pool that
the ECS waits and verification steps run in, and it needs no heartbeats to be cancelled.
Secret URLs (`url_env`) are read here, from the worker's environment, and are never logged or
put in an error: both name the receiver by `Notification.target`. A POST connects only where
the egress policy allows (ecs_canary.egress); a refused address fails the delivery for good.
"""

from __future__ import annotations

import os
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.polling import activity_logger
from ecs_canary.egress import EgressRefused, guarded_async_client
from ecs_canary.notification_messages import (
    NotificationInput,
    NotificationOutcome,
    RunLinks,
    body,
)
from ecs_canary.notifications import HIDDEN, Notification, check_http_url
from ecs_canary.web_ui import run_link

# Webhooks answer in well under a second; one that takes longer than this is treated as down
# for this attempt, and the retry policy tries again.
REQUEST_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "ecs-canary-notifications"
# Statuses that mean "not now" rather than "never": the receiver may take it on a retry.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
# A receiver's Retry-After is honoured up to this; the workflow's overall bound still applies.
_MAX_RETRY_AFTER = 60
# Enough of a refusing receiver's answer to say why (Slack answers e.g. "invalid_payload").
_ANSWER_SHOWN = 200


@activity.defn
async def send_notification(request: NotificationInput) -> NotificationOutcome:
    """POST the event to the receiver in its format; return its status code once it took it."""
    notification, attempt = request.notification, activity.info().attempt
    target = notification.target
    url = _url(notification, attempt)
    run = _run_links()
    event = request.event if request.wave is None else f"{request.event}/{request.wave}"
    key = f"{run.workflow_id}/{run.run_id}/{event}/{request.target_index}"
    log = activity_logger().bind(event=request.event, target=target)
    try:
        async with guarded_async_client(timeout=REQUEST_TIMEOUT, follow_redirects=False) as client:
            response = await client.post(
                url,
                json=body(request, run),
                headers={"Idempotency-Key": key, "User-Agent": USER_AGENT},
            )
    except EgressRefused as refused:
        reason = f"{target}: nothing sent: {_without_url(str(refused), url, target)}"
        log.warning(f"Notification {request.event} refused: {reason}")
        raise ApplicationError(reason, attempt, type="EgressRefused", non_retryable=True) from None
    except httpx.HTTPError as err:
        detail = _without_url(str(err), url, target)
        reason = f"{type(err).__name__}" + (f": {detail}" if detail else "")
        log.warning(f"Notification {request.event} to {target} got no answer: {reason}")
        raise ApplicationError(
            f"{target} did not answer: {reason}", attempt, type="NotificationFailed"
        ) from None
    if response.is_success:
        log.info(f"Notification {request.event} sent to {target} (HTTP {response.status_code})")
        return NotificationOutcome(status_code=response.status_code, attempts=attempt)
    refusal = _refused(response, target, attempt)
    log.warning(f"Notification {request.event} to {target} failed: {refusal.message}")
    raise refusal


def _url(notification: Notification, attempt: int) -> str:
    """The receiver's URL; a `url_env` variable that is unset or not an http(s) URL fails at
    once, naming the variable (never its value) and the fix."""
    if notification.url is not None:
        return notification.url
    name = notification.url_env
    assert name is not None, "exactly one of url / url_env is set"
    value = os.environ.get(name, "")
    if not value:
        raise ApplicationError(
            f"the worker has no environment variable {name} (or it is empty): set it to the "
            "webhook URL in the worker's environment",
            attempt,
            type="NotificationUrlMissing",
            non_retryable=True,
        )
    problem = check_http_url(value)
    if problem is not None:
        raise ApplicationError(
            f"the worker's ${name} {problem}",
            attempt,
            type="NotificationUrlInvalid",
            non_retryable=True,
        )
    return value


def _without_url(text: str, url: str, target: str) -> str:
    """A transport error's text on one line, with the URL (whole, or its path and query, where
    tokens live) replaced by how the receiver is shown."""
    text = text.replace(url, target)
    parts = urlsplit(url)
    for secret in (parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, HIDDEN)
    return " ".join(text.split())


def _run_links() -> RunLinks:
    info = activity.info()
    namespace = info.workflow_namespace or info.namespace
    # Only workflows schedule this activity, so their ids are set; the fallbacks keep a
    # standalone test run working.
    workflow_id = info.workflow_id or info.activity_id
    run_id = info.workflow_run_id or ""
    return RunLinks(
        namespace=namespace,
        workflow_id=workflow_id,
        run_id=run_id,
        web_ui=run_link(namespace, workflow_id, run_id or None),
    )


def _refused(response: httpx.Response, target: str, attempt: int) -> ApplicationError:
    """The error for an answer that is not 2xx: retryable for 5xx and "not now" statuses."""
    code = response.status_code
    answer = " ".join(response.text[:_ANSWER_SHOWN].split())
    if response.is_redirect:
        answer = "redirects are not followed: give the webhook's final URL"
    retryable = code >= 500 or code in _RETRYABLE_STATUSES
    message = f"{target} answered HTTP {code}" + (f": {answer}" if answer else "")
    return ApplicationError(
        message,
        attempt,
        type="NotificationFailed" if retryable else "NotificationRefused",
        non_retryable=not retryable,
        next_retry_delay=_retry_after(response) if retryable else None,
    )


def _retry_after(response: httpx.Response) -> timedelta | None:
    """A receiver's `Retry-After` in seconds (the HTTP-date form is left to the policy)."""
    value = response.headers.get("Retry-After", "").strip()
    if not value.isdigit():
        return None
    return timedelta(seconds=min(int(value), _MAX_RETRY_AFTER))
