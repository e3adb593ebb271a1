"""The `http` verification step: smoke requests from the worker, one after another.

A request fails on a status not in `expect_status`, a body without `expect_body_contains`, a
latency over `max_latency_ms`, or no answer (connection error, timeout). The step fails as
soon as more than `max_failures` requests failed, and passes once all were sent otherwise.
Redirects are not followed (a 3xx is judged like any status). URLs are the user's own, so
each request connects only where the egress policy allows (ecs_canary.egress): a refused
address fails the step at once, with nothing sent.
"""

from __future__ import annotations

import math
import time

import httpx
from temporalio import activity

from activities.polling import activity_logger
from activities.steps.common import StepClock, plural, seconds, timed_out
from ecs_canary.egress import EgressRefused, guarded_client
from ecs_canary.steps import HttpStep, HttpStepInput, StepVerdict

MAX_REQUEST_SECONDS = 30.0
# With `max_latency_ms`, a request waits this factor of it at most: later fails anyway.
LATENCY_TIMEOUT_FACTOR = 2.0
MIN_REQUEST_SECONDS = 0.1


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def milliseconds(value: float) -> str:
    return "<1 ms" if value < 1 else f"{value:.0f} ms"


def request_timeout(step: HttpStep, remaining: float) -> float:
    """How long one request may wait for its answer: never past the step's deadline, nor so
    long that the activity misses a heartbeat, nor much past `max_latency_ms`."""
    cap = MAX_REQUEST_SECONDS
    heartbeat_timeout = activity.info().heartbeat_timeout
    if heartbeat_timeout:
        cap = min(cap, heartbeat_timeout.total_seconds() / 2)
    if step.max_latency_ms is not None:
        cap = min(cap, max(1.0, step.max_latency_ms / 1000 * LATENCY_TIMEOUT_FACTOR))
    return max(MIN_REQUEST_SECONDS, min(cap, remaining))


class HttpCheck:
    def __init__(self, request: HttpStepInput) -> None:
        self.step = request.step
        self.clock = StepClock(self.step.timeout_seconds)
        self.log = activity_logger().bind(step=self.step.name, url=self.step.url)
        self.latencies_ms: list[float] = []
        self.sent = 0
        self.failures: list[str] = []

    def run(self) -> StepVerdict:
        step = self.step
        self.log.info(
            f"Checking {step.method} {step.url} for verification step {step.name} "
            f"({plural(step.requests, 'request')})"
        )
        try:
            verdict = self._requests()
        except EgressRefused as refused:
            verdict = StepVerdict(passed=False, summary=f"nothing sent: {refused}")
        self.log.info(f"Verification step {step.name}: {verdict.summary}")
        return verdict

    def _requests(self) -> StepVerdict:
        step = self.step
        verdict: StepVerdict | None = None
        with guarded_client(follow_redirects=False) as client:
            for number in range(1, step.requests + 1):
                if number > 1:
                    self.clock.sleep(step.interval_seconds)
                if self.clock.expired:
                    verdict = timed_out(step.timeout_seconds, self._counts())
                    break
                self.clock.beat(sent=self.sent, failed=len(self.failures))
                self.sent += 1
                failure = self._one(client, number)
                if failure is not None:
                    self.failures.append(failure)
                    self.log.warning(f"Request {failure}")
                    if len(self.failures) > step.max_failures:
                        break
        if verdict is None:
            passed = len(self.failures) <= step.max_failures
            verdict = StepVerdict(passed=passed, summary=self._summary())
        return verdict

    def _one(self, client: httpx.Client, number: int) -> str | None:
        """Send request `number`; its failure (`3: status 503 not in [200]`) or None."""
        step = self.step
        timeout = request_timeout(step, self.clock.remaining)
        started = time.perf_counter()
        try:
            response = client.request(
                step.method,
                step.url,
                headers=step.headers,
                content=step.body.encode() if step.body is not None else None,
                timeout=timeout,
            )
        except httpx.TimeoutException as err:
            return (
                f"{number}: no answer within {seconds(round(timeout, 3))}s ({type(err).__name__})"
            )
        except httpx.RequestError as err:
            return f"{number}: {type(err).__name__}: {err}"
        latency_ms = (time.perf_counter() - started) * 1000
        self.latencies_ms.append(latency_ms)
        if response.status_code not in step.expect_status:
            return f"{number}: status {response.status_code} not in {step.expect_status}"
        if step.expect_body_contains is not None and step.expect_body_contains not in response.text:
            return f"{number}: body does not contain {step.expect_body_contains!r}"
        if step.max_latency_ms is not None and latency_ms > step.max_latency_ms:
            return f"{number}: latency {latency_ms:.0f} ms over {step.max_latency_ms:g} ms"
        return None

    def _counts(self) -> str:
        step = self.step
        total = (
            plural(step.requests, "request")
            if self.sent == step.requests
            else f"{self.sent} of {plural(step.requests, 'request')}"
        )
        failed = len(self.failures)
        text = f"{total}: {self.sent - failed} ok, {failed} failed"
        if self.latencies_ms:
            p50, p95 = (percentile(self.latencies_ms, p) for p in (50, 95))
            text += f"; p50 {milliseconds(p50)}, p95 {milliseconds(p95)}"
        return text

    def _summary(self) -> str:
        """`10 requests: 10 ok, 0 failed; p50 3 ms, p95 5 ms`, and the first failure if any."""
        text = self._counts()
        return f"{text}; request {self.failures[0]}" if self.failures else text
