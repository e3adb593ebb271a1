"""The gate's record of attempts (ecs_canary.attempt_log): a flood of refusals keeps the last
100 with a count of the rest, never an accepted attempt, and shows them all in arrival order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecs_canary.attempt_log import MAX_REFUSED_ATTEMPTS, AttemptLog

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FLOOD = 10_000


def test_a_flood_keeps_every_accepted_attempt_and_the_last_refusals_in_order():
    log = AttemptLog()
    log.record("pause", "alice", None, T0, "signal", None, signed=False)
    for number in range(FLOOD):
        at = T0 + timedelta(seconds=number)
        if number == FLOOD - 50:  # an accepted attempt amid the refusals that are kept
            log.record("resume", "alice", "back", at, "update", None, signed=True)
        log.record("approve", f"p{number}", None, at, "signal", f"no {number}", signed=False)

    attempts = log.attempts
    assert log.refused_dropped == FLOOD - MAX_REFUSED_ATTEMPTS
    assert len(attempts) == MAX_REFUSED_ATTEMPTS + 2
    assert [a.by for a in attempts[:2]] == ["alice", f"p{FLOOD - MAX_REFUSED_ATTEMPTS}"]
    resumed = attempts[1 + MAX_REFUSED_ATTEMPTS - 50]
    assert (resumed.action, resumed.accepted, resumed.signed) == ("resume", True, True)
    assert attempts[-1].model_dump() == {
        "action": "approve",
        "by": f"p{FLOOD - 1}",
        "reason": None,
        "at": T0 + timedelta(seconds=FLOOD - 1),
        "via": "signal",
        "accepted": False,
        "refusal": f"no {FLOOD - 1}",
        "signed": False,
    }
    assert [a.at for a in attempts] == sorted(a.at for a in attempts)


def test_fewer_refusals_than_the_bound_are_all_kept():
    log = AttemptLog()
    for _ in range(3):
        log.record("reject", None, "why", T0, "update", "the gate is closed", signed=False)
    assert log.refused_dropped == 0
    assert [(a.accepted, a.refusal) for a in log.attempts] == [(False, "the gate is closed")] * 3
