"""The watch after the rollout as a request asks for it (`rolling.watch_seconds`,
`rolling.watch_alarms`) and as `starter.py status` and `starter.py watch` show it, without a
server; the details a deployment starts with name it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cli.format import details, status_lines
from cli.timeline import Timeline
from ecs_canary.models import MAX_ALARMS, DeploymentRequest
from ecs_canary.strict import MAX_SECONDS
from tests.helpers.statuses import deployment_status

EXAMPLE = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "request.json").read_text()
)


def _request(rolling: dict[str, Any], alarms: list[str] | None = None) -> DeploymentRequest:
    verification = {**EXAMPLE.get("verification", {}), "alarms": alarms or []}
    return DeploymentRequest.model_validate(
        {**EXAMPLE, "verification": verification, "rolling": rolling}
    )


def _refusal(rolling: dict[str, Any], alarms: list[str] | None = None) -> str:
    """The one validation error, as `location: message`."""
    with pytest.raises(ValidationError) as refused:
        _request(rolling, alarms)
    (error,) = refused.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def test_no_watch_by_default():
    request = DeploymentRequest.model_validate(EXAMPLE)
    assert request.rolling.watch_seconds == 0 and request.rolling.watch_alarms is None


def test_the_watch_watches_the_verification_alarms_by_default():
    request = _request({"watch_seconds": 600}, alarms=["myapp-5xx"])
    assert request.watch_alarms == ["myapp-5xx"]


def test_watch_alarms_replace_the_verification_alarms():
    request = _request(
        {"watch_seconds": 600, "watch_alarms": ["myapp-latency"]}, alarms=["myapp-5xx"]
    )
    assert request.watch_alarms == ["myapp-latency"]
    assert request.verification.alarms == ["myapp-5xx"]


def test_the_start_details_name_the_watch():
    watched = _request({"watch_seconds": 900}, alarms=["myapp-5xx"])
    assert "**Watch after the rollout:** 15m, alarms myapp-5xx" in details(watched)
    assert "Watch after the rollout" not in details(DeploymentRequest.model_validate(EXAMPLE))


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (-1, "greater than or equal to 0"),
        (MAX_SECONDS + 1, f"less than or equal to {MAX_SECONDS}"),
        (float("inf"), f"less than or equal to {MAX_SECONDS}"),
        (float("nan"), f"less than or equal to {MAX_SECONDS}"),
        ("ten minutes", "a valid number"),
    ],
)
def test_watch_seconds_out_of_range_are_refused(seconds, message):
    refusal = _refusal({"watch_seconds": seconds}, alarms=["myapp-5xx"])
    assert refusal.startswith("rolling.watch_seconds: ") and message in refusal


@pytest.mark.parametrize(
    ("alarms", "location", "message"),
    [
        ([""], "rolling.watch_alarms.0", "at least 1 character"),
        (["a" * 256], "rolling.watch_alarms.0", "at most 255 characters"),
        ([f"alarm-{n}" for n in range(MAX_ALARMS + 1)], "rolling.watch_alarms", "at most 100"),
        ("myapp-5xx", "rolling.watch_alarms", "a valid list"),
    ],
)
def test_bad_watch_alarms_are_refused(alarms, location, message):
    refusal = _refusal({"watch_seconds": 600, "watch_alarms": alarms})
    assert refusal.startswith(f"{location}: ") and message in refusal


def test_a_watch_with_nothing_to_watch_is_refused():
    assert _refusal({"watch_seconds": 600}) == (
        ": Value error, rolling.watch_seconds is set but there are no alarms to watch: list "
        "them in rolling.watch_alarms (or verification.alarms)"
    )
    assert "no alarms to watch" in _refusal(
        {"watch_seconds": 600, "watch_alarms": []}, alarms=["myapp-5xx"]
    )


def test_watch_alarms_without_a_watch_time_are_refused():
    assert _refusal({"watch_alarms": ["myapp-5xx"]}) == (
        ": Value error, rolling.watch_alarms is set but rolling.watch_seconds is 0: set how "
        "long to watch them after the rollout"
    )


def test_status_shows_the_watch_deadline_and_what_is_left():
    ends = datetime(2026, 12, 2, 14, 9, 30, tzinfo=UTC)
    watching = deployment_status(stage="watch", gate_open=False, watch_ends_at=ends)
    lines = status_lines("ecs-canary/prod/myapp", watching, now=ends - timedelta(seconds=300))
    assert (
        "watch:     until 14:09:30 UTC (5m left); an alarm or a cancel rolls the service back"
    ) in lines
    at_the_gate = status_lines("ecs-canary/prod/myapp", deployment_status())
    assert not any(line.startswith("watch:") for line in at_the_gate)


def test_watch_tells_once_when_the_watch_ends():
    ends = datetime(2026, 12, 2, 14, 9, 30, tzinfo=UTC)
    story = Timeline("ecs-canary/prod/myapp", clock=lambda: ends - timedelta(seconds=720))
    watching = deployment_status(stage="watch", gate_open=False, watch_ends_at=ends)
    told = (
        "watching alarms until 14:09:30 UTC (12m left); an alarm or a cancel rolls the service "
        "back"
    )
    assert told in story.of_status(watching)
    assert story.of_status(watching) == []
