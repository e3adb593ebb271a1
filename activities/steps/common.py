"""What the verification step activities share: the step's own deadline (kept across retries in
the heartbeat details), their heartbeats, and waiting that wakes at once when cancelled."""

from __future__ import annotations

import time
from typing import Any

from temporalio import activity

from activities.cancellation import raise_if_cancelled
from activities.polling import Heartbeats
from ecs_canary.steps import StepVerdict


def seconds(value: float) -> str:
    """600.0 -> "600", 0.5 -> "0.5"."""
    return f"{value:g}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def timed_out(timeout_seconds: float, detail: str = "") -> StepVerdict:
    suffix = f": {detail}" if detail else ""
    return StepVerdict(passed=False, summary=f"timed out after {seconds(timeout_seconds)}s{suffix}")


def restored_details() -> dict[str, Any]:
    """What an earlier attempt of this activity heartbeated last ({} on a first attempt)."""
    details = activity.info().heartbeat_details
    return dict(details[0]) if details and isinstance(details[0], dict) else {}


class StepClock:
    """The step's `timeout_seconds`, counted from when its first attempt started (a retry finds
    that time in the heartbeat details), and its heartbeats, which carry that time along."""

    def __init__(self, timeout_seconds: float, started_at: float | None = None) -> None:
        restored = restored_details().get("started_at")
        self.timeout_seconds = timeout_seconds
        self.started_at = float(restored) if restored is not None else started_at or time.time()
        self._heartbeats = Heartbeats()

    def restart_from(self, started_at: float) -> None:
        """An earlier start found some other way (a retry's tasks' createdAt) counts when no
        heartbeat details say otherwise."""
        if restored_details().get("started_at") is None:
            self.started_at = min(self.started_at, started_at)

    @property
    def remaining(self) -> float:
        return self.started_at + self.timeout_seconds - time.time()

    @property
    def expired(self) -> bool:
        return self.remaining <= 0

    def beat(self, **details: Any) -> None:
        self._heartbeats.beat({"started_at": self.started_at, **details})

    def sleep(self, seconds_: float) -> None:
        """Sleep `seconds_` or until the deadline, whichever is first; raise CancelledError at
        once if the activity is cancelled meanwhile."""
        timeout = max(0.0, min(seconds_, self.remaining))
        if timeout > 0:
            activity.wait_for_cancelled_sync(timeout=timeout)
        self.check_cancelled()

    @staticmethod
    def check_cancelled() -> None:
        raise_if_cancelled("the verification step")
