"""boto3 clients shared by all activities of a worker: one per service and region, a shared ECS
call budget, coalesced DescribeServices, and the mapping of AWS errors to Temporal failures."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.loaders
import botocore.session
import botocore.utils
from temporalio.exceptions import ApplicationError, CancelledError

from activities.call_metrics import count_ecs_calls, timed_budget

# Errors that a later attempt can get past; everything else AWS says is final.
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
    }
)
# botocore retries transient errors itself before Temporal's retry policy takes over.
_BOTO_CONFIG = botocore.config.Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=30,
)
# DescribeServices takes at most 10 services per call.
DESCRIBE_SERVICES_BATCH = 10


def local_timestamp(value: Any) -> datetime:
    """A timestamp of an AWS answer, as botocore's own parser reads it (in local time), without
    dateutil's `tzlocal` for the epoch seconds of a JSON answer: a DescribeServices of ten
    services carries fifty, and converting each through `tzlocal` was over a third of parsing
    the answer, polled every few hundred milliseconds by every wait. The same instant and the
    same local wall-clock time, on a fixed-offset `timezone`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).astimezone()
    return botocore.utils.parse_timestamp(value)


# The service models (ECS's and CloudWatch's JSON are megabytes), read once per process: every
# session makes its own loader otherwise, and parsing them again was most of making a client.
# A worker makes its clients once; the tests make a worker, so clients, for each test.
_MODEL_LOADER = botocore.loaders.create_loader()


def _boto_session() -> boto3.session.Session:
    """A session whose clients read timestamps with `local_timestamp`."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _MODEL_LOADER)
    parsers = core.get_component("response_parser_factory")
    parsers.set_parser_defaults(timestamp_parser=local_timestamp)
    return boto3.session.Session(botocore_session=core)


def aws_error_code(err: botocore.exceptions.ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "Unknown")


def aws_error_message(err: botocore.exceptions.ClientError) -> str:
    return err.response.get("Error", {}).get("Message", str(err))


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Turn AWS's answer into a Temporal failure: transient ones retry, the rest fail at once
    with AWS's own code and message."""
    try:
        yield
    except botocore.exceptions.ClientError as err:
        code = aws_error_code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        transient = code in _TRANSIENT_CODES or status >= 500
        raise ApplicationError(
            f"{action} failed: {code}: {aws_error_message(err)}",
            type=code,
            non_retryable=not transient,
        ) from err
    except (
        botocore.exceptions.ParamValidationError,
        botocore.exceptions.NoCredentialsError,
        botocore.exceptions.NoRegionError,
    ) as err:
        raise ApplicationError(
            f"{action} failed: {err}", type=type(err).__name__, non_retryable=True
        ) from err


def final_error(message: str, failure_type: str) -> ApplicationError:
    """A failure no retry can fix (the deployment's own verdict, a conflict with what exists):
    Temporal does not retry it."""
    return ApplicationError(message, type=failure_type, non_retryable=True)


def latest_tagged_revision(client: Any, family: str, key: str, value: str) -> dict | None:
    """The family's latest task definition revision if its tag `key` is `value` (an earlier
    attempt of the same run or step registered it), else None; None too when the family has
    no revision yet."""
    try:
        latest = client.describe_task_definition(taskDefinition=family, include=["TAGS"])
    except botocore.exceptions.ClientError as err:
        if aws_error_code(err) == "ClientException":  # the family has no revision yet
            return None
        with aws_errors("DescribeTaskDefinition"):
            raise
    tags = {t["key"]: t["value"] for t in latest.get("tags") or []}
    revision: dict = latest["taskDefinition"]
    return revision if tags.get(key) == value else None


class CallBudget:
    """At most `calls_per_second` ECS requests leave this worker in any second, however many
    deployments run at once. (The window was 1.1 s, a tenth kept for calls delayed between
    sending and AWS receiving; a worker sharing a budget keeps one call of its share for that
    instead, activities.shared_budget.LATE_CALLS_PER_WORKER.)

    When requests queue, changes go first: a held-back CreateService or UpdateService delays
    its deployment by all the time ECS then takes, a held-back poll only by a poll interval.
    A read gives way to changes that arrive up to `read_slack_seconds` after it, no more; a
    DescribeTaskDefinition (the rollback target's check, made beside the canary's wait for its
    tasks to start) gives way for `background_slack_seconds`.

    Spread (the worker's budget), grants are at least a window's share of time apart instead of
    a whole window's calls at once: under load the calls of a burst leave the worker over the
    following moments and would reach ECS in the same second as the next window's.
    """

    WINDOW_SECONDS = 1.0
    # A queued caller calls `while_waiting` at least this often (its wait's heartbeat).
    CHECK_IN_SECONDS = 1.0
    CHANGES = frozenset(
        {"RegisterTaskDefinition", "CreateService", "UpdateService", "DeleteService"}
    )
    BACKGROUND_READS = frozenset({"DescribeTaskDefinition"})

    def __init__(
        self,
        calls_per_second: float,
        read_slack_seconds: float = 0.5,
        background_slack_seconds: float = 2.0,
        while_waiting: Callable[[], None] = lambda: None,
        spread: bool = False,
    ) -> None:
        self._capacity = max(1, int(calls_per_second))
        self._spread = spread
        self._while_waiting = while_waiting
        self._read_slack = read_slack_seconds
        self._background_slack = background_slack_seconds
        self._granted: deque[float] = deque()  # grant times within the last window
        self._queue: list[tuple[float, int, threading.Event]] = []  # (due, arrival, wake-up)
        self._arrivals = itertools.count()
        self._lock = threading.Lock()

    @property
    def waiting(self) -> int:
        """Requests queued for the budget right now."""
        with self._lock:
            return len(self._queue)

    @property
    def calls_per_second(self) -> int:
        return self._capacity

    def set_rate(self, calls_per_second: float) -> None:
        """A new rate from now on (a worker's share of a budget shared with other workers);
        0 holds every request until a rate is set."""
        with self._lock:
            self._capacity = max(0, int(calls_per_second))
            self._wake_first()

    def acquire(self, event_name: str = "", **_: Any) -> None:
        """botocore's before-send hook: returns when this request may be sent."""
        slack = self._slack(event_name.rsplit(".", 1)[-1])
        checked_in = time.monotonic()  # arrival: the first check-in is due a CHECK_IN_SECONDS on
        with self._lock:
            ticket = (checked_in + slack, next(self._arrivals), threading.Event())
            heapq.heappush(self._queue, ticket)
        try:
            while True:
                with self._lock:
                    now = time.monotonic()
                    while self._granted and self._granted[0] <= now - self.WINDOW_SECONDS:
                        self._granted.popleft()
                    first = self._queue[0] is ticket
                    spaced_at = self._granted[-1] + self._gap() if self._granted else now
                    if first and len(self._granted) < self._capacity and spaced_at <= now:
                        heapq.heappop(self._queue)
                        self._granted.append(now)
                        self._wake_first()
                        return
                    # The first in line waits for the window to move, or for its spacing (with
                    # no rate yet, for one); the others to be first.
                    timeout = None
                    if first and self._capacity > 0 and self._granted:
                        full = len(self._granted) >= self._capacity
                        moves = self._granted[0] + self.WINDOW_SECONDS if full else now
                        timeout = max(moves, spaced_at) - now
                # Checks in once a CHECK_IN_SECONDS, not on every short wait for its spacing.
                check_in = max(0.0, checked_in + self.CHECK_IN_SECONDS - time.monotonic())
                ticket[2].wait(check_in if timeout is None else min(timeout, check_in))
                ticket[2].clear()
                if time.monotonic() >= checked_in + self.CHECK_IN_SECONDS:
                    self._while_waiting()
                    checked_in = time.monotonic()
        except BaseException:
            # A cancelled activity stops at its check-in (`while_waiting`, outside the lock; see
            # activities.cancellation): it leaves the line, or everyone behind would wait forever.
            with self._lock:
                if any(queued is ticket for queued in self._queue):
                    self._queue.remove(ticket)
                    heapq.heapify(self._queue)
                    self._wake_first()
            raise

    def _gap(self) -> float:
        """The least time between two grants when spread (else 0): a whole window's calls
        granted at once leave the worker over the next moments, as its threads get to run,
        and would reach ECS bunched with the next window's."""
        return self.WINDOW_SECONDS / self._capacity if self._spread and self._capacity else 0.0

    def _slack(self, operation: str) -> float:
        if operation in self.CHANGES:
            return 0.0
        if operation in self.BACKGROUND_READS:
            return self._background_slack
        return self._read_slack

    def _wake_first(self) -> None:
        """Let the first in line check for itself (called with the lock held)."""
        if self._queue:
            self._queue[0][2].set()


class _LeaderCancelled(Exception):
    """The activity leading a describe batch was cancelled before the batch had its answer."""


@dataclass
class _DescribeBatch:
    names: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: BaseException | None = None


class ServiceDescriber:
    """Coalesces concurrent DescribeServices of one cluster into calls of up to ten services.

    The first caller for a cluster opens a batch and waits `window` seconds for others to join;
    waits poll on shared wall-clock ticks, so concurrent deployments land in the same batch.
    """

    def __init__(
        self, window_seconds: float = 0.05, while_waiting: Callable[[], None] = lambda: None
    ) -> None:
        self._window = window_seconds
        self._while_waiting = while_waiting
        self._open: dict[tuple[str, str], _DescribeBatch] = {}
        self._lock = threading.Lock()

    @property
    def joining(self) -> int:
        """Services in batches that are still taking members right now."""
        with self._lock:
            return sum(len(batch.names) for batch in self._open.values())

    def describe(self, client: Any, cluster: str, service: str) -> dict[str, Any] | None:
        return self.describe_many(client, cluster, [service])[service]

    def describe_many(
        self, client: Any, cluster: str, services: list[str]
    ) -> dict[str, dict[str, Any] | None]:
        """Each service by name (None where ECS has none), from a batch shared with others."""
        key = (client.meta.region_name, cluster)
        while True:
            with self._lock:
                batch = self._open.get(key)
                leader = (
                    batch is None or len(set(batch.names) | set(services)) > DESCRIBE_SERVICES_BATCH
                )
                if batch is None or leader:
                    batch = self._open[key] = _DescribeBatch()
                batch.names.extend(name for name in services if name not in batch.names)
            if leader:
                self._call(client, cluster, key, batch)
            else:
                while not batch.done.wait(CallBudget.CHECK_IN_SECONDS):
                    self._while_waiting()
            if not isinstance(batch.error, _LeaderCancelled):
                break  # else its leader's activity was cancelled: join or lead another batch
        if batch.error is not None:
            raise batch.error
        return {name: batch.found.get(name) for name in services}

    def _call(self, client: Any, cluster: str, key: tuple[str, str], batch: _DescribeBatch) -> None:
        """The leader's DescribeServices, its answer or error handed to every member. A leader
        whose activity is cancelled stops before its request leaves (activities.cancellation):
        the others then start over instead of waiting for an answer that never comes."""
        try:
            time.sleep(self._window)
            self._close(key, batch)
            response = client.describe_services(
                cluster=cluster, services=batch.names, include=["TAGS"]
            )
            batch.found = {s["serviceName"]: s for s in response["services"]}
        except CancelledError:
            batch.error = _LeaderCancelled()
            raise
        except BaseException as err:  # handed to every member of the batch
            batch.error = err
        finally:
            self._close(key, batch)
            batch.done.set()

    def _close(self, key: tuple[str, str], batch: _DescribeBatch) -> None:
        with self._lock:
            if self._open.get(key) is batch:
                del self._open[key]


class AwsClients:
    """Thread-safe cache of boto3 clients; ECS clients all draw on one call budget.

    Each client keeps up to `max_connections` connections open, one per activity that may call
    at once: with botocore's default of 10, a hundred deployments open (and, against AWS,
    TLS-handshake) a new connection for most calls and log "Connection pool is full"."""

    def __init__(
        self,
        ecs_calls_per_second: float,
        max_connections: int = 10,
        while_waiting: Callable[[], None] = lambda: None,
        before_request: Callable[..., None] = lambda **_: None,
    ) -> None:
        self._session = _boto_session()
        self._config = _BOTO_CONFIG.merge(
            botocore.config.Config(max_pool_connections=max(1, max_connections))
        )
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()
        # `before_request`: called (botocore's before-send) before every attempt of every
        # request (the worker: a cancelled activity makes no further AWS request).
        self._before_request = before_request
        # `while_waiting`: what a caller held up in the budget's queue or by a shared describe
        # does every CallBudget.CHECK_IN_SECONDS (the worker: its wait's heartbeat).
        self.ecs_budget = CallBudget(ecs_calls_per_second, while_waiting=while_waiting, spread=True)
        self.describer = ServiceDescriber(while_waiting=while_waiting)

    def _client(self, service: str, region: str | None) -> Any:
        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                client = self._session.client(service, region_name=region, config=self._config)
                client.meta.events.register("before-send", self._before_request)
                if service == "ecs":
                    acquire = timed_budget(self.ecs_budget.acquire)
                    client.meta.events.register("before-send.ecs", acquire)
                    count_ecs_calls(client.meta.events)
                self._clients[(service, region)] = client
            return client

    def ecs(self, region: str | None) -> Any:
        return self._client("ecs", region)

    def cloudwatch(self, region: str | None) -> Any:
        return self._client("cloudwatch", region)

    def elbv2(self, region: str | None) -> Any:
        return self._client("elbv2", region)

    def autoscaling(self, region: str | None) -> Any:
        return self._client("application-autoscaling", region)
