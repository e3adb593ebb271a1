"""Human-readable bits shared by the workflow's summaries and the starter's output."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ecs_canary.baseline import BaselineState, baseline_text
from ecs_canary.scaling import ScalingHoldState, scaling_text
from ecs_canary.targets import TargetCount, targets_text
from ecs_canary.traffic import TrafficState, weights_text


def duration_text(seconds: float) -> str:
    """`90` -> `1m30s`, `3600` -> `1h`: short enough for a Web UI timer summary."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return "".join(parts)


def utc_clock(moment: datetime, now: datetime) -> str:
    """`14:09:30 UTC`, or `2026-12-03 02:09:30 UTC` when `moment` falls on another (UTC) day
    than `now`: a gate that waits overnight must not read as if it ended today. Seconds are
    kept (and the rest truncated) so that "decide by" is never later than the real deadline."""
    moment = moment.astimezone(UTC)
    shown = moment.strftime("%H:%M:%S UTC")
    if moment.date() != now.astimezone(UTC).date():
        shown = moment.strftime("%Y-%m-%d ") + shown
    return shown


def time_left(until: datetime, now: datetime) -> str:
    """`4m30s left` (whole seconds, rounded down: never more than is really left), or
    `time is up` once `until` has passed (a worker that was down has yet to act on it)."""
    seconds = (until - now).total_seconds()
    if seconds <= 0:
        return "time is up"
    return f"{duration_text(math.floor(seconds))} left"


def approvals_text(approvals: list[str], needed: int) -> str:
    """`alice (1 of 2)`: who has approved so far, against the approvals the gate needs."""
    return f"{', '.join(approvals) or 'none yet'} ({len(approvals)} of {needed})"


def load_balancing_lines(
    targets: list[TargetCount],
    traffic: TrafficState | None,
    scaling: ScalingHoldState | None,
    baseline: BaselineState | None = None,
) -> list[tuple[str, str]]:
    """(label, text) for a deployment's targets (`1 of 4 healthy targets in my-tg, ~25 %`), the
    canary analysis's baseline, the weighted canary's traffic and the main service's auto
    scaling; none for a service without them. Shared by the Web UI details and `starter.py
    status`."""
    lines = []
    group_percents = traffic.weights if traffic is not None else {}
    if targets:
        lines.append(("Targets", targets_text(targets, group_percents)))
    if baseline is not None:
        lines.append(("Baseline", baseline_text(baseline, group_percents)))
    if traffic is not None:
        state = "the canary's weight" if traffic.shifted else "as recorded"
        lines.append(("Traffic", f"{weights_text(traffic.weights)} ({state})"))
    if scaling is not None:
        lines.append(("Scaling", scaling_text(scaling)))
    return lines
