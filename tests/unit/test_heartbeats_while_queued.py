"""A wait held up outside its loop (queued for the worker's ECS budget) keeps heartbeating
with its last details, so the server never takes it for dead and retries it; code that is not
a wait's, or a wait an earlier activity on the same thread ran, sends nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.aws import CallBudget
from activities.polling import Heartbeats, keep_alive
from tests.helpers import wait_until_sync

# The waits' heartbeat timeout, scaled as their check-ins are (`quick_check_ins`): a wait
# beats every quarter of it, at a check-in.
HEARTBEAT_TIMEOUT = timedelta(seconds=0.4)

pytestmark = pytest.mark.usefixtures("quick_check_ins")


def _environment(task_token: bytes, saved: tuple = ()) -> tuple[ActivityEnvironment, list[tuple]]:
    """An attempt of a wait; `saved`: the details its previous attempt heartbeat."""
    env = ActivityEnvironment()
    env.info = activity.Info(
        **{
            **vars(env.info),
            "heartbeat_timeout": HEARTBEAT_TIMEOUT,
            "task_token": task_token,
            "heartbeat_details": saved,
            "attempt": 2 if saved else 1,
        }
    )
    beats: list[tuple] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    return env, beats


def _held_in_the_budget(
    env: ActivityEnvironment, beats: list[tuple], first_beat: dict | None, until: int
) -> None:
    """Runs a wait in `env` that heartbeats `first_beat` (if any) and then queues for an ECS
    budget that holds every call, until `beats` (env's heartbeats) holds `until`."""
    budget = CallBudget(10, while_waiting=keep_alive)
    budget.set_rate(0)  # held: as behind a queue of other deployments' calls

    def wait() -> None:
        heartbeats = Heartbeats()
        if first_beat is not None:
            heartbeats.beat(first_beat)
        budget.acquire(event_name="before-send.ecs.DescribeServices")

    caller = threading.Thread(target=lambda: env.run(wait), daemon=True)
    caller.start()
    wait_until_sync(lambda: len(beats) >= until, timeout=15)
    budget.set_rate(10)
    caller.join(5)
    assert not caller.is_alive()


def test_a_wait_queued_for_the_budget_keeps_heartbeating_its_last_details():
    env, beats = _environment(b"wait-1")
    # Queued for longer than the heartbeat timeout, it beat more than once, always the same.
    _held_in_the_budget(env, beats, {"events_seen": 3}, until=5)
    assert all(details == ({"events_seen": 3},) for details in beats)


def test_code_that_is_not_the_current_wait_sends_nothing():
    first, first_beats = _environment(b"wait-1")
    first.run(lambda: Heartbeats().beat({"events_seen": 1}))
    later, later_beats = _environment(b"local-activity-2")
    later.run(keep_alive)  # same thread, another activity: not the wait that registered
    keep_alive()  # outside any activity
    assert first_beats == [({"events_seen": 1},)] and later_beats == []


def test_a_retried_wait_held_up_before_its_first_look_keeps_its_predecessors_details():
    saved = {"events_seen": 7, "reported": ["Canary step one"]}
    env, beats = _environment(b"wait-1-attempt-2", saved=(saved,))
    _held_in_the_budget(env, beats, None, until=2)  # no beat of its own: queued for its first look
    assert len(beats) >= 2 and all(details == (saved,) for details in beats)
