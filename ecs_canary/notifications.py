"""Notifications: who is told when a canary waits, is decided, and when the deployment ends.

The request's `notifications` field is a public contract (keep the field names):

    "notifications": [
      {"url": "http://127.0.0.1:9000/hook", "format": "slack",
       "events": ["gate_open", "decided", "finished"]},
      {"url_env": "ECS_CANARY_WEBHOOK_DEPLOYS", "format": "json",
       "events": ["gate_open", "finished"]}
    ]

`url_env` names an environment variable of the *worker*: only the notification activity reads
it, so a secret webhook URL (Slack's carry their token in the path) never enters the workflow's
history, the `status` query or a log line. Wherever a target is shown, `target` names it with
anything secret-looking hidden.

This module depends on nothing else in the package, so that the request (`ecs_canary.request`)
and the status (`ecs_canary.status`) can use its types; what is posted is built in
`ecs_canary.notification_messages`.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Literal
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator

from ecs_canary.strict import StrictModel

# `frozen`: a freeze window of the platform policy holds the run (at its start, or before its
# rolling deploy) until it ends.
NotificationEvent = Literal["frozen", "gate_open", "decided", "finished"]
NotificationFormat = Literal["slack", "json"]
DeliveryState = Literal["pending", "sent", "failed"]
# In the order a run reaches them.
EVENTS: tuple[NotificationEvent, ...] = ("frozen", "gate_open", "decided", "finished")
# Each target gets its own activity per event: a handful is plenty, a hundred is a mistake.
MAX_NOTIFICATIONS = 10

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HIDDEN = "***"
# A path segment this long with a digit in it, or any very long one, is treated as a token
# (Slack's T.../B.../secret, Discord's id/token, a Teams GUID); short words ("hook", "v1",
# "services") stay readable.
_TOKEN_MIN_WITH_DIGIT = 8
_TOKEN_MIN = 20


def check_http_url(url: str) -> str | None:
    """Why `url` is not a usable webhook address, or None when it is one. Shared by the
    request's validation and the activity's check of a URL read from the worker's environment
    (whose message must not quote the secret URL, hence no URL in the answer)."""
    if url != url.strip() or any(ch.isspace() for ch in url):
        return "contains whitespace"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as err:
        return f"is not a valid URL ({err})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    return None


# The only variables of the worker a request may name as a webhook's URL.
URL_ENV_PREFIX = "ECS_CANARY_WEBHOOK_"


class Notification(StrictModel):
    """One receiver of notifications: a webhook URL (or the worker's variable holding it), the
    body format it understands, and the events it wants."""

    url: str | None = None
    # Long enough for any variable name, short enough to quote in an error message.
    url_env: str | None = Field(None, max_length=255)
    format: NotificationFormat = "json"
    events: list[NotificationEvent] = Field(default_factory=lambda: list(EVENTS), min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and (problem := check_http_url(value)) is not None:
            raise ValueError(f"url {problem}")
        return value

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                f"url_env must name an environment variable (letters, digits, underscores), "
                f"got {value!r}"
            )
        if value is not None and not value.startswith(URL_ENV_PREFIX):
            # Any other variable of the worker (a credential, a secret) is not the deployer's
            # to send somewhere.
            raise ValueError(
                f"url_env may only name a variable whose name starts with {URL_ENV_PREFIX}, "
                f"got {value!r}"
            )
        return value

    @field_validator("events")
    @classmethod
    def _each_event_once(cls, value: list[NotificationEvent]) -> list[NotificationEvent]:
        # Counted in one pass: a list of a million events must not stall the workflow task.
        repeated = sorted(event for event, count in Counter(value).items() if count > 1)
        if repeated:
            raise ValueError(f"events lists {', '.join(repeated)} more than once")
        return value

    @model_validator(mode="after")
    def _one_address(self) -> Notification:
        if (self.url is None) == (self.url_env is None):
            raise ValueError(
                "give exactly one of url (the webhook's address) or url_env (the name of an "
                "environment variable of the worker that holds it, for a secret URL)"
            )
        return self

    @property
    def target(self) -> str:
        """How `status`, the logs and the Web UI name this receiver: `$ECS_CANARY_WEBHOOK_DEPLOYS`,
        or the URL with its secret-looking parts hidden."""
        if self.url_env is not None:
            return f"${self.url_env}"
        assert self.url is not None, "exactly one of url / url_env is set"
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """`https://hooks.slack.com/services/T0AB12CD3/B0AB12CD3/abcd...` ->
    `https://hooks.slack.com/services/***/***/***`: scheme, host, port and plain path words
    stay, so people can tell receivers apart; credentials, tokens, the query's values and the
    fragment do not."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    netloc = f"{HIDDEN}@{host}" if parts.username or parts.password else host
    try:
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        netloc += f":{HIDDEN}"
    path = "/".join(_hide_token(segment) for segment in parts.path.split("/"))
    query = "&".join(
        f"{pair.split('=', 1)[0]}={HIDDEN}" if "=" in pair else HIDDEN
        for pair in parts.query.split("&")
        if pair
    )
    return urlunsplit(SplitResult(parts.scheme, netloc, path, query, ""))


def _hide_token(segment: str) -> str:
    long_with_digit = len(segment) >= _TOKEN_MIN_WITH_DIGIT and any(c.isdigit() for c in segment)
    return HIDDEN if long_with_digit or len(segment) >= _TOKEN_MIN else segment


class NotificationState(StrictModel):
    """One notification's delivery, as `status` shows it: pending while its activity runs
    (Temporal retries it), then sent or failed. `error` is the receiver's answer or the
    transport's complaint, never the secret URL."""

    event: NotificationEvent
    target_index: int  # its place in the request's `notifications`
    target: str
    state: DeliveryState = "pending"
    attempts: int = 0  # known once the delivery settled; 0 while pending
    error: str | None = None
    queued_at: datetime
    settled_at: datetime | None = None
