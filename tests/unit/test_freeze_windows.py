"""Freeze windows as pure rules (ecs_canary.freeze): when a one-off or recurring window holds an
instant and until when, across DST changes; and the policy file that lists them, refused with
the reason when a window is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ecs_canary.freeze import Freeze, freeze_at
from ecs_canary.policy import POLICY_FILE_ENV, PlatformPolicy, PolicyError, read_policy

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def _windows(*windows: dict[str, Any]) -> PlatformPolicy:
    return PlatformPolicy.model_validate({"freeze_windows": list(windows)})


def _at(policy: PlatformPolicy, moment: datetime) -> Freeze | None:
    return freeze_at(policy.freeze_windows, moment)


LAUNCH = {"name": "launch", "start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00+00:00"}


def test_a_one_off_window_holds_from_its_start_until_its_end():
    policy = _windows(LAUNCH)
    end = datetime(2026, 12, 27, tzinfo=UTC)
    assert _at(policy, datetime(2026, 12, 23, 23, 59, 59, tzinfo=UTC)) is None
    assert _at(policy, datetime(2026, 12, 24, tzinfo=UTC)) == Freeze("launch", end)
    assert _at(policy, datetime(2026, 12, 26, 23, 59, tzinfo=UTC)) == Freeze("launch", end)
    assert _at(policy, end) is None  # the end is not in the window


def test_a_one_off_window_given_with_an_offset_ends_at_that_instant():
    policy = _windows(
        {"name": "paris", "start": "2026-07-01T09:00:00+02:00", "end": "2026-07-01T18:00:00+02:00"}
    )
    freeze = _at(policy, datetime(2026, 7, 1, 7, 30, tzinfo=UTC))
    assert freeze == Freeze("paris", datetime(2026, 7, 1, 16, 0, tzinfo=UTC))


WEEKEND = {
    "name": "weekend",
    "cron": "0 18 * * 5",  # Friday 18:00, Paris time
    "duration_seconds": 62 * 3600,  # until Monday 08:00
    "timezone": "Europe/Paris",
}


def test_a_recurring_window_holds_each_week_from_friday_evening_to_monday_morning():
    policy = _windows(WEEKEND)
    friday = datetime(2026, 6, 5, 18, 0, tzinfo=PARIS)
    monday = datetime(2026, 6, 8, 8, 0, tzinfo=PARIS)
    assert _at(policy, friday - timedelta(seconds=1)) is None
    assert _at(policy, friday) == Freeze("weekend", monday.astimezone(UTC))
    assert _at(policy, datetime(2026, 6, 7, 12, 0, tzinfo=PARIS)) == Freeze(
        "weekend", monday.astimezone(UTC)
    )
    assert _at(policy, monday) is None
    assert _at(policy, datetime(2026, 6, 10, 12, 0, tzinfo=PARIS)) is None  # a Wednesday


def test_a_recurring_window_across_the_spring_dst_change_lasts_its_real_duration():
    # New York springs forward on 2026-03-08 at 02:00 (EST -> EDT). A nightly window from 01:00
    # lasting 3 hours of real time ends at 05:00 EDT that night, not 04:00 by the wall clock.
    policy = _windows(
        {"name": "nightly", "cron": "0 1 * * *", "duration_seconds": 3 * 3600,
         "timezone": "America/New_York"}
    )
    opened = datetime(2026, 3, 8, 1, 0, tzinfo=NEW_YORK)  # 06:00 UTC
    freeze = _at(policy, datetime(2026, 3, 8, 4, 30, tzinfo=NEW_YORK))  # 08:30 UTC
    assert freeze == Freeze("nightly", datetime(2026, 3, 8, 9, 0, tzinfo=UTC))
    assert freeze.until - opened.astimezone(UTC) == timedelta(hours=3)
    assert freeze.until.astimezone(NEW_YORK).hour == 5
    # The night before, with no change, 3 hours end at 04:00 by the wall clock (09:00 UTC).
    before = _at(policy, datetime(2026, 3, 7, 3, 0, tzinfo=NEW_YORK))
    assert before == Freeze("nightly", datetime(2026, 3, 7, 9, 0, tzinfo=UTC))


def test_a_recurring_window_at_a_time_the_spring_change_skips_opens_when_the_clock_resumes():
    # 02:30 does not exist in New York on 2026-03-08: as cron does, the window opens at 03:00.
    policy = _windows(
        {"name": "maintenance", "cron": "30 2 * * *", "duration_seconds": 1800,
         "timezone": "America/New_York"}
    )
    assert _at(policy, datetime(2026, 3, 8, 2, 59, tzinfo=NEW_YORK)) is None  # not a real time
    freeze = _at(policy, datetime(2026, 3, 8, 3, 10, tzinfo=NEW_YORK))
    assert freeze == Freeze("maintenance", datetime(2026, 3, 8, 7, 30, tzinfo=UTC))


def test_a_recurring_window_across_the_autumn_dst_change_follows_the_zone():
    # Paris falls back on 2026-10-25 at 03:00 (CEST -> CET): the weekend window opened on Friday
    # at 18:00 CEST lasts 62 real hours, so it ends at 07:00 CET on Monday by the wall clock.
    policy = _windows(WEEKEND)
    freeze = _at(policy, datetime(2026, 10, 25, 12, 0, tzinfo=PARIS))
    assert freeze is not None
    assert freeze.until == datetime(2026, 10, 23, 16, 0, tzinfo=UTC) + timedelta(hours=62)
    assert freeze.until.astimezone(PARIS).hour == 7


def test_windows_that_follow_on_or_overlap_are_one_freeze_until_the_last_ends():
    policy = _windows(
        LAUNCH,
        {"name": "after", "start": "2026-12-27T00:00:00Z", "end": "2026-12-28T00:00:00Z"},
        {"name": "inside", "start": "2026-12-25T00:00:00Z", "end": "2026-12-26T00:00:00Z"},
    )
    freeze = _at(policy, datetime(2026, 12, 25, 12, tzinfo=UTC))
    assert freeze == Freeze("launch, inside, after", datetime(2026, 12, 28, tzinfo=UTC))


def test_no_windows_no_freeze():
    assert _at(PlatformPolicy(), datetime(2026, 12, 25, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("windows", "expected"),
    [
        (
            [{"name": "x", "start": "2026-12-24T00:00:00", "end": "2026-12-25T00:00:00Z"}],
            "freeze_windows.0.one_off.start: Input should have timezone info",
        ),
        (
            [{"name": "x", "start": "2026-12-25T00:00:00Z", "end": "2026-12-24T00:00:00Z"}],
            "window 'x': end must be after start",
        ),
        (
            [{"name": "x", "start": "2026-12-24T00:00:00Z", "end": "2026-12-25T00:00:00Z",
              "timezone": "UTC"}],
            "freeze_windows.0.one_off.timezone: Extra inputs are not permitted",
        ),
        (
            [{**WEEKEND, "cron": "0 18 * * fri-"}],
            "freeze_windows.0.recurring.cron: Value error, invalid cron expression",
        ),
        (
            [{**WEEKEND, "timezone": "Europe/Atlantis"}],
            "unknown time zone 'Europe/Atlantis'",
        ),
        (
            [{**WEEKEND, "duration_seconds": 0}],
            "freeze_windows.0.recurring.duration_seconds: Input should be greater than 0",
        ),
        ([WEEKEND, WEEKEND], "freeze window names must be unique: weekend named twice"),
        ([{"name": "x"}], "freeze_windows.0.one_off.start: Field required"),
        ("weekends", "freeze_windows: Input should be a valid list"),
    ],
)
def test_a_wrong_window_stops_the_worker_with_what_is_wrong(
    windows: Any, expected: str, tmp_path: Path
):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"freeze_windows": windows}))
    with pytest.raises(PolicyError) as refused:
        read_policy({POLICY_FILE_ENV: str(path)})
    assert expected in str(refused.value)
    assert f"the policy file {path} ({POLICY_FILE_ENV})" in str(refused.value)


def test_an_unknown_key_in_the_policy_is_refused(tmp_path: Path):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"freeze_window": [LAUNCH]}))
    with pytest.raises(PolicyError, match="freeze_window: Extra inputs are not permitted"):
        read_policy({POLICY_FILE_ENV: str(path)})
