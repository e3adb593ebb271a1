"""The gate's record of decision attempts: every accepted one, the last MAX_REFUSED_ATTEMPTS
refused ones and a count of the refused ones it forgot (issue 23).

Cheap per refused attempt on purpose. Anyone who may signal a run can send it refusals without
end, and a worker that did not have the run cached replays every one of them before it answers
`status`: 10,000 refused signals are 10,000 calls here in one replay. A refused attempt is
therefore kept as a plain tuple in a bounded deque (the oldest falls out by itself), and every
attempt becomes a DecisionAttempt only when `status` shows it, in arrival order.
"""

from __future__ import annotations

import heapq
from collections import deque
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple

from ecs_canary.models import DecisionAction, DecisionAttempt, DecisionSource, HoldAction

# Refused attempts kept for `status`: anyone who may signal can send them without end, and each
# one stays in the workflow's memory and in every answer. The count of the rest is kept.
MAX_REFUSED_ATTEMPTS = 100


class _Recorded(NamedTuple):
    """An attempt as recorded (accepted when `refusal` is None), and its place among all."""

    order: int
    action: DecisionAction | HoldAction
    by: str | None
    reason: str | None
    at: datetime
    via: DecisionSource
    refusal: str | None
    signed: bool

    def shown(self) -> DecisionAttempt:
        return DecisionAttempt(
            action=self.action,
            by=self.by,
            reason=self.reason,
            at=self.at,
            via=self.via,
            accepted=self.refusal is None,
            refusal=self.refusal,
            signed=self.signed,
        )


class AttemptLog:
    """A gate's attempts, in the order they came (see the module docstring for why so)."""

    def __init__(self) -> None:
        self._recorded = 0  # every attempt so far: the next one's place
        self._accepted: list[_Recorded] = []
        self._refused: deque[_Recorded] = deque(maxlen=MAX_REFUSED_ATTEMPTS)
        self._refused_count = 0

    def record(
        self,
        action: DecisionAction | HoldAction,
        by: str | None,
        reason: str | None,
        at: datetime,
        via: DecisionSource,
        refusal: str | None,
        *,
        signed: bool,
    ) -> None:
        """An attempt, accepted when `refusal` is None."""
        self._recorded += 1
        recorded = _Recorded(self._recorded, action, by, reason, at, via, refusal, signed)
        if refusal is None:
            self._accepted.append(recorded)
        else:
            self._refused.append(recorded)
            self._refused_count += 1

    @classmethod
    def restored(cls, attempts: list[DecisionAttempt], refused_dropped: int) -> AttemptLog:
        """The log as an earlier run showed it (`attempts`, `refused_dropped`), for the run it
        continued as (workflows.continue_at_gate): the same attempts in the same order, and
        the same count of the ones it forgot."""
        log = cls()
        for shown in attempts:
            refusal = None if shown.accepted else shown.refusal or "refused"
            log.record(
                shown.action,
                shown.by,
                shown.reason,
                shown.at,
                shown.via,
                refusal,
                signed=shown.signed,
            )
        log._refused_count += refused_dropped
        return log

    @property
    def attempts(self) -> list[DecisionAttempt]:
        """Every accepted attempt and the last MAX_REFUSED_ATTEMPTS refused ones, in the order
        they came (a new list each time)."""
        in_order = heapq.merge(self._accepted, self._refused, key=attrgetter("order"))
        return [recorded.shown() for recorded in in_order]

    @property
    def refused_dropped(self) -> int:
        """Refused attempts beyond the last MAX_REFUSED_ATTEMPTS: forgotten, but counted."""
        return self._refused_count - len(self._refused)
