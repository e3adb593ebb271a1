"""The gate's record of decision attempts: every accepted one, the last MAX_REFUSED_ATTEMPTS
refused ones and a count of the refused ones it forgot (issue 23).

Cheap per refused attempt on purpose. Anyone who may signal a run can send it refusals without
end, and a worker that did not have the run cached replays every one of them before it answers
`status`: 10,000 refused signals are 10,000 calls here in one replay. A refused attempt is
therefore kept as a plain tuple in a bounded deque (the oldest falls out by itself) and becomes
a DecisionAttempt only when `status` shows it; an accepted one, rare, is a DecisionAttempt at
once. Both keep their place in arrival order.
"""

from __future__ import annotations

import heapq
from collections import deque
from datetime import datetime
from operator import itemgetter
from typing import NamedTuple

from ecs_canary.models import DecisionAction, DecisionAttempt, DecisionSource, HoldAction

# Refused attempts kept for `status`: anyone who may signal can send them without end, and each
# one stays in the workflow's memory and in every answer. The count of the rest is kept.
MAX_REFUSED_ATTEMPTS = 100


class _Refused(NamedTuple):
    """A refused attempt as recorded, and its place among all the attempts."""

    order: int
    action: DecisionAction | HoldAction
    by: str | None
    reason: str | None
    at: datetime
    via: DecisionSource
    refusal: str
    signed: bool

    def shown(self) -> DecisionAttempt:
        return DecisionAttempt(
            action=self.action,
            by=self.by,
            reason=self.reason,
            at=self.at,
            via=self.via,
            accepted=False,
            refusal=self.refusal,
            signed=self.signed,
        )


class AttemptLog:
    """A gate's attempts, in the order they came (see the module docstring for why so)."""

    def __init__(self) -> None:
        self._recorded = 0  # every attempt so far: the next one's place
        self._accepted: list[tuple[int, DecisionAttempt]] = []
        self._refused: deque[_Refused] = deque(maxlen=MAX_REFUSED_ATTEMPTS)
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
        if refusal is None:
            attempt = DecisionAttempt(
                action=action, by=by, reason=reason, at=at, via=via, accepted=True, signed=signed
            )
            self._accepted.append((self._recorded, attempt))
        else:
            refused = _Refused(self._recorded, action, by, reason, at, via, refusal, signed)
            self._refused.append(refused)
            self._refused_count += 1

    @property
    def attempts(self) -> list[DecisionAttempt]:
        """Every accepted attempt and the last MAX_REFUSED_ATTEMPTS refused ones, in the order
        they came (a new list each time)."""
        refused = ((kept.order, kept.shown()) for kept in self._refused)
        return [attempt for _, attempt in heapq.merge(self._accepted, refused, key=itemgetter(0))]

    @property
    def refused_dropped(self) -> int:
        """Refused attempts beyond the last MAX_REFUSED_ATTEMPTS: forgotten, but counted."""
        return self._refused_count - len(self._refused)
