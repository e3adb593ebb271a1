"""How many deployments a wave may start at a time (ecs_canary.train.room_to_start): a start
the server is backing off stops holding its place, within a bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ecs_canary.train import STARTS_AT_ONCE, STRAGGLING_START, room_to_start

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
JUST_ASKED = NOW - timedelta(milliseconds=100)
LONG_AGO = NOW - STRAGGLING_START


def test_nothing_being_started_leaves_room_for_starts_at_once() -> None:
    assert room_to_start([], NOW) == STARTS_AT_ONCE


def test_each_recent_start_holds_its_place() -> None:
    assert room_to_start([JUST_ASKED] * 5, NOW) == STARTS_AT_ONCE - 5
    assert room_to_start([JUST_ASKED] * STARTS_AT_ONCE, NOW) == 0


def test_a_start_asked_for_long_enough_ago_lets_the_next_one_go() -> None:
    asked = [JUST_ASKED] * (STARTS_AT_ONCE - 1) + [LONG_AGO]
    assert room_to_start(asked, NOW) == 1


def test_never_more_than_twice_starts_at_once_are_being_started() -> None:
    assert room_to_start([LONG_AGO] * (2 * STARTS_AT_ONCE), NOW) == 0
    asked = [LONG_AGO] * (2 * STARTS_AT_ONCE - 3)
    assert room_to_start(asked, NOW) == 3


@given(
    ages=st.lists(
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(seconds=60)), max_size=60
    )
)
def test_the_room_keeps_both_bounds(ages: list[timedelta]) -> None:
    asked = [NOW - age for age in ages]
    room = room_to_start(asked, NOW)
    recent = sum(1 for age in ages if age < STRAGGLING_START)
    assert room >= 0
    assert recent + room <= STARTS_AT_ONCE or room == 0
    assert len(asked) + room <= 2 * STARTS_AT_ONCE or room == 0
