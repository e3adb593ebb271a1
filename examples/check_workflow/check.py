"""CanarySmokeCheck: a check of your own for ecs-canary's `workflow` verification step.

The deployment starts this workflow as a child (id `<deployment workflow id>/verify/<step
name>`, on the step's `task_queue`) once the canary is steady, with one JSON object:

    {"cluster": "ecs-canary", "region": "us-east-1", "service": "myapp",
     "canary_service": "myappCanary", "task_definition_arn": "arn:aws:ecs:...:1",
     "input": <the step's "input", as written in the request>}

and passes the step when the workflow returns an object with `"passed": true`; `"summary"`
(a short line) is shown in `starter.py status`, the status query and the result.

This one sends a few HTTP requests to `input.url` (through the `http_probe` activity in
probe.py) and passes when every answer has an expected status. The step's input:

    {"url": "http://127.0.0.1:8080/",   # required; {service} / {canary_service} are filled in
     "requests": 3,                      # how many requests, one after another
     "interval_seconds": 1,              # pause between two requests (a durable timer)
     "timeout_seconds": 5,               # per request
     "expect_status": [200]}             # statuses that count as good

Workflow code must be deterministic: no I/O, no clocks, no randomness here (the activity does
the I/O). This module imports only the standard library and temporalio, so Temporal's sandbox
loads it cheaply for every run. A cancelled deployment cancels this workflow (parent close
policy REQUEST_CANCEL): the timer or the activity raises CancelledError and the run ends
cancelled, which is what we want, so nothing catches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

# The activity is called by name so this module need not import probe.py (and its urllib).
PROBE_ACTIVITY = "http_probe"
MAX_REQUESTS = 100


@dataclass
class ProbeRequest:
    url: str
    timeout_seconds: float


@dataclass
class ProbeResult:
    status: int | None  # None: no answer (connection refused, timeout, ...)
    error: str | None
    elapsed_ms: float


@workflow.defn(name="CanarySmokeCheck")
class CanarySmokeCheck:
    @workflow.run
    async def run(self, check: dict[str, Any]) -> dict[str, Any]:
        try:
            url, requests, interval, timeout, expected = _options(check)
        except (KeyError, TypeError, ValueError) as err:
            # A bad input is a failed check with the reason, not a workflow task that fails
            # (and is retried) forever.
            return {"passed": False, "summary": f"invalid input: {err}"}

        workflow.logger.info("checking %s for %s", url, check.get("canary_service"))
        failures: list[str] = []
        latencies: list[float] = []
        for number in range(1, requests + 1):
            if number > 1 and interval > 0:
                await workflow.sleep(interval)
            result = await workflow.execute_activity(
                PROBE_ACTIVITY,
                ProbeRequest(url=url, timeout_seconds=timeout),
                result_type=ProbeResult,
                start_to_close_timeout=timedelta(seconds=timeout + 10),
                # A bad answer is data, not an error; retries only cover a lost worker.
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            if result.status is None:
                failures.append(f"{number}: {result.error}")
            else:
                latencies.append(result.elapsed_ms)
                if result.status not in expected:
                    failures.append(f"{number}: status {result.status} not in {expected}")

        summary = f"{url}: {requests - len(failures)}/{requests} ok"
        if latencies:
            summary += f", slowest {max(latencies):.0f} ms"
        if failures:
            summary += f"; first failure: request {failures[0]}"
        return {"passed": not failures, "summary": summary}


def _options(check: dict[str, Any]) -> tuple[str, int, float, float, list[int]]:
    options = check.get("input") or {}
    if not isinstance(options, dict) or not isinstance(options.get("url"), str):
        raise ValueError('"input" needs a "url" (a string)')
    url = (
        options["url"]
        .replace("{service}", str(check.get("service", "")))
        .replace("{canary_service}", str(check.get("canary_service", "")))
    )
    requests = int(options.get("requests", 3))
    if not 1 <= requests <= MAX_REQUESTS:
        raise ValueError(f"requests must be 1 to {MAX_REQUESTS}")
    interval = float(options.get("interval_seconds", 1))
    timeout = float(options.get("timeout_seconds", 5))
    if interval < 0 or timeout <= 0:
        raise ValueError("interval_seconds must be >= 0 and timeout_seconds > 0")
    expected = [int(status) for status in options.get("expect_status", [200])]
    return url, requests, interval, timeout, expected
