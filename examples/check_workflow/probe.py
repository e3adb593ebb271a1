"""The activity behind CanarySmokeCheck: one HTTP GET, with a timeout, from the check's worker.

Activities are where a check does its I/O (HTTP, databases, a browser, a test runner): they run
outside the workflow sandbox and may do anything. This one uses only the standard library, and
reports a bad answer as data (a status, or an error text) so that the workflow decides.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

from check import ProbeRequest, ProbeResult
from temporalio import activity

USER_AGENT = "ecs-canary-check/1.0"


def _get(url: str, timeout_seconds: float) -> ProbeResult:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:  # 4xx/5xx: an answer, with its status
        status = err.code
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return ProbeResult(status=None, error=f"{type(err).__name__}: {reason}", elapsed_ms=0.0)
    return ProbeResult(status=status, error=None, elapsed_ms=(time.perf_counter() - started) * 1000)


@activity.defn(name="http_probe")
async def http_probe(probe: ProbeRequest) -> ProbeResult:
    activity.logger.info("GET %s", probe.url)
    return await asyncio.to_thread(_get, probe.url, probe.timeout_seconds)
