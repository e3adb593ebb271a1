"""Freeze windows: when the platform holds rollouts (holidays, weekends, a big launch).

The platform team lists them in the worker's policy file (`freeze_windows`, see
`ecs_canary.policy`), each either one-off or recurring:

    {"name": "launch", "start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z"}
    {"name": "weekend", "cron": "0 18 * * 5", "duration_seconds": 223200,
     "timezone": "Europe/Paris"}

A recurring window opens at each time its cron expression names, read on the wall clock of
`timezone` (cronsim does the cron part, as cron does across a DST change: a time skipped by
the spring change fires at the first moment after it), and lasts `duration_seconds` of real
time, so a window that spans a DST change is as long as it says.

Everything here is a pure function of the windows and an instant: the workflow calls it with
`workflow.now()` and the policy recorded in its history, so a replay finds the same freeze.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import AwareDatetime, Discriminator, Field, Tag, field_validator, model_validator

from ecs_canary.strict import MAX_SECONDS, StrictModel

_NAME = r"^[A-Za-z0-9 _.:/-]{1,100}$"
# Windows that follow each other (or overlap) are waited out together; past this many in a row
# the freeze is as good as permanent, and the run waits for the last one found, then looks again.
_MAX_CHAINED_WINDOWS = 100


class OneOffWindow(StrictModel):
    """From `start` to `end` (RFC 3339, with an offset or Z)."""

    name: str = Field(pattern=_NAME)
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> OneOffWindow:
        if self.end <= self.start:
            raise ValueError(f"window {self.name!r}: end must be after start")
        return self

    def containing(self, moment: datetime) -> datetime | None:
        """When the window ends, if `moment` falls in it; else None."""
        return self.end if self.start <= moment < self.end else None


class RecurringWindow(StrictModel):
    """Opens at every time `cron` names on `timezone`'s wall clock; lasts `duration_seconds`."""

    name: str = Field(pattern=_NAME)
    cron: str = Field(min_length=1, max_length=200)
    duration_seconds: float = Field(gt=0, le=MAX_SECONDS)
    timezone: str = Field(min_length=1, max_length=100)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {zone!r}: use an IANA name such as Europe/Paris or UTC"
            ) from None
        return zone

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, expression: str) -> str:
        try:
            CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as err:
            raise ValueError(f"invalid cron expression {expression!r}: {err}") from None
        return expression

    def containing(self, moment: datetime) -> datetime | None:
        """When the occurrence that `moment` falls in ends, if it falls in one; else None. Only
        the latest occurrence that began at or before `moment` can hold it: an older one began
        earlier and lasts as long."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        # cronsim goes back from strictly before its start: a second later includes `moment`.
        for opened in CronSim(self.cron, local + timedelta(seconds=1), reverse=True):
            if opened <= local:
                ends = opened.astimezone(UTC) + timedelta(seconds=self.duration_seconds)
                return ends if moment < ends else None
        return None


def _window_kind(window: Any) -> str:
    """`recurring` for a window with a cron expression, else `one_off`: each kind then reports
    its own missing or unknown keys."""
    if isinstance(window, dict):
        return "recurring" if "cron" in window else "one_off"
    return "recurring" if isinstance(window, RecurringWindow) else "one_off"


FreezeWindow = Annotated[
    Annotated[OneOffWindow, Tag("one_off")] | Annotated[RecurringWindow, Tag("recurring")],
    Discriminator(_window_kind),
]


def check_unique_names(windows: list[OneOffWindow | RecurringWindow]) -> None:
    """A window is named in `status` and in an override's audit: two of one name are a typo."""
    twice = sorted(name for name, count in Counter(w.name for w in windows).items() if count > 1)
    if twice:
        raise ValueError(f"freeze window names must be unique: {', '.join(twice)} named twice")


@dataclass(frozen=True)
class Freeze:
    """The freeze in force: the window (its name; windows that follow on are named with it)
    and when the last of them ends."""

    window: str
    until: datetime


def freeze_at(windows: list[OneOffWindow | RecurringWindow], moment: datetime) -> Freeze | None:
    """The freeze `moment` falls in, or None. Windows that overlap or follow on without a gap
    are one freeze: it lasts until none of them holds any more."""
    names: list[str] = []
    until = moment
    for _ in range(_MAX_CHAINED_WINDOWS):
        holding = [(w.name, end) for w in windows if (end := w.containing(until)) is not None]
        if not holding:
            break
        names.extend(name for name, _ in holding if name not in names)
        until = max(end for _, end in holding)
    if not names:
        return None
    return Freeze(window=", ".join(names), until=until.astimezone(UTC))
