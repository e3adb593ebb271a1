"""The verification gate's rules: who may decide, when, and what an attempt records.

Kept apart from the workflow so that the Update validators and the signal handlers apply the
very same rules: a refused Update never reaches history, a refused signal is recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ecs_canary.models import (
    Decision,
    DecisionAction,
    DecisionAttempt,
    DecisionInput,
    DecisionSource,
    VerificationSettings,
)

ANONYMOUS = "anonymous"


class GateRefusal(ValueError):
    """Why a decision attempt was refused; its text goes back to the caller."""


class Gate:
    def __init__(self) -> None:
        self._settings = VerificationSettings()
        # waiting_for_canary -> baking -> verifying (steps still running) -> open -> closed
        self._phase = "waiting_for_canary"
        self._bake_ends_at: datetime | None = None
        self._deadline: datetime | None = None
        self.decision: Decision | None = None
        self.approvals: list[str] = []
        self.attempts: list[DecisionAttempt] = []

    def configure(self, settings: VerificationSettings) -> None:
        self._settings = settings

    @property
    def is_open(self) -> bool:
        return self._phase == "open" and self.decision is None

    @property
    def approved(self) -> bool:
        return self.decision is not None and self.decision.action == "approve"

    @property
    def rejected(self) -> bool:
        return self.decision is not None and self.decision.action == "reject"

    def start_bake(self, now: datetime) -> None:
        self._phase = "baking"
        self._bake_ends_at = now + timedelta(seconds=self._settings.bake_seconds)

    def await_steps(self) -> None:
        """The bake is over (or there was none) but verification steps still run."""
        self._phase = "verifying"
        self._bake_ends_at = None

    def open(self, now: datetime) -> None:
        self._phase = "open"
        self._bake_ends_at = None
        self._deadline = now + timedelta(seconds=self._settings.timeout_seconds)

    def close(self) -> None:
        self._phase = "closed"
        self._bake_ends_at = self._deadline = None

    @property
    def min_approvals(self) -> int:
        """Distinct approvals that decide the gate."""
        return self._settings.min_approvals

    @property
    def deadline(self) -> datetime | None:
        """When the open gate decides by itself (`on_timeout`); None unless it is open. An
        instant, not a countdown: a query computes with the time of the last workflow task, so
        only the reader knows how much time is left."""
        return self._deadline if self.is_open else None

    @property
    def bake_ends_at(self) -> datetime | None:
        """When the bake is over; None unless the canary is baking."""
        return self._bake_ends_at if self._phase == "baking" else None

    def check(self, action: DecisionAction, attempt: DecisionInput) -> None:
        """Raise GateRefusal if this attempt may not decide now; changes nothing."""
        by = attempt.by or ANONYMOUS
        if self.decision is not None:
            raise GateRefusal(
                f"the gate was already decided: {self.decision.action} by "
                f"{self.decision.by or ANONYMOUS} ({self.decision.via})"
            )
        if self._phase == "closed":
            raise GateRefusal("the gate is closed: the rolling deploy has begun")
        if self._settings.approvers and by not in self._settings.approvers:
            raise GateRefusal(
                f"{by!r} may not decide this deployment; allowed: "
                f"{', '.join(self._settings.approvers)}"
            )
        if action == "reject":
            return
        if self._phase == "waiting_for_canary":
            raise GateRefusal("the canary is not steady yet; an approval must follow verification")
        if self._phase == "baking":
            raise GateRefusal("the canary is still baking; approve once the bake time has passed")
        if self._phase == "verifying":
            raise GateRefusal("verification steps are still running; approve once they have passed")
        if by in self.approvals:
            raise GateRefusal(
                f"{by!r} has already approved; {self._settings.min_approvals} distinct "
                "approvers are needed"
            )

    def offer(
        self, action: DecisionAction, attempt: DecisionInput, via: DecisionSource, now: datetime
    ) -> bool:
        """Apply an attempt if the rules allow it and record it either way."""
        try:
            self.check(action, attempt)
        except GateRefusal as refusal:
            self._record(action, attempt, via, now, refusal=str(refusal))
            return False
        self._record(action, attempt, via, now, refusal=None)
        by = attempt.by or ANONYMOUS
        if action == "reject":
            self._decide("reject", by, attempt.reason, via, now)
        else:
            self.approvals.append(by)
            if len(self.approvals) >= self._settings.min_approvals:
                self._decide("approve", by, attempt.reason, via, now)
        return True

    def decide_automatically(
        self,
        action: DecisionAction,
        via: DecisionSource,
        reason: str,
        now: datetime,
        by: str = "ecs-canary",
    ) -> None:
        self._record(action, DecisionInput(by=by, reason=reason), via, now, refusal=None)
        self._decide(action, by, reason, via, now)

    def _decide(
        self,
        action: DecisionAction,
        by: str,
        reason: str | None,
        via: DecisionSource,
        now: datetime,
    ) -> None:
        self.decision = Decision(
            action=action, by=by, reason=reason, at=now, via=via, approvals=list(self.approvals)
        )

    def _record(
        self,
        action: DecisionAction,
        attempt: DecisionInput,
        via: DecisionSource,
        now: datetime,
        refusal: str | None,
    ) -> None:
        self.attempts.append(
            DecisionAttempt(
                action=action,
                by=attempt.by,
                reason=attempt.reason,
                at=now,
                via=via,
                accepted=refusal is None,
                refusal=refusal,
            )
        )
