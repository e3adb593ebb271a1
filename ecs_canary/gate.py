"""The verification gate's rules: who may decide, when, and what an attempt records.

Kept apart from the workflow so that the Update validators and the signal handlers apply the
very same rules: an Update its validator refuses never reaches history, a refused signal is
recorded (and so is an Update refused after its token was verified).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio.exceptions import ApplicationError

from ecs_canary.attempt_log import AttemptLog
from ecs_canary.models import (
    Decision,
    DecisionAction,
    DecisionAttempt,
    DecisionInput,
    DecisionSource,
    HoldAction,
    VerificationSettings,
)
from ecs_canary.policy import POLICY_FILE_ENV, SIGNED_DECISIONS_ENV, PlatformPolicy
from ecs_canary.strict import StrictModel
from ecs_canary.train import TrainDecision

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Claim:
    """Who an attempt says decides, and why, as recorded: a payload the model refuses (or an
    automatic decision, whose reason may be longer than a person's) is recorded without
    building a DecisionInput it would fail. Cheap on purpose: a flood of refused signals is
    recorded one by one in one workflow task."""

    by: str | None = None
    reason: str | None = None


class CarriedGate(StrictModel):
    """An open gate as a run hands it to the run it continues as (workflows.continue_at_gate):
    what its rules and `status` need to go on as if nothing had happened."""

    policy: PlatformPolicy | None
    opened_at: datetime
    deadline: datetime
    approvals: list[str]
    attempts: list[DecisionAttempt]
    refused_attempts_dropped: int


class GateRefusal(ValueError):
    """Why a decision attempt was refused; its text goes back to the caller."""


class UpdateRefusal(GateRefusal, ApplicationError):
    """A refusal raised by an Update *handler* (once the token was verified): a handler fails
    its Update only with an ApplicationError (anything else fails the workflow task, which then
    retries forever). Still a GateRefusal: the caller sees the validator's type, and the
    failure converter leaves out the stack trace."""

    def __init__(self, reason: str) -> None:
        ApplicationError.__init__(self, reason, type=GateRefusal.__name__, non_retryable=True)

    def __str__(self) -> str:
        return self.message


class Gate:
    def __init__(
        self, workflow_id: str = "ID", run_id: str | None = None, command: str = "approve|reject"
    ) -> None:
        """`workflow_id` and `run_id`: the run this gate is for, named in the commands its
        refusals suggest (a decision, a signed one above all, is for this run only); `command`:
        the starter's command that decides it (a release train's: `train approve|reject`)."""
        self._run = f"{workflow_id} --run-id {run_id}" if run_id else workflow_id
        self._command = command
        self._settings = VerificationSettings()
        # The platform's policy: from the run's first task (None until then), then as the
        # worker read it for the latest decision.
        self._policy: PlatformPolicy | None = None
        # waiting_for_canary -> baking -> verifying (steps still running) -> analysing (the
        # canary analysis still running) -> open (or, in a release train, train) -> closed
        self._phase = "waiting_for_canary"
        # The release train that decides instead of a person (see `await_train`).
        self._train: str | None = None
        self._bake_ends_at: datetime | None = None
        self._deadline: datetime | None = None
        # When the gate opened for a person's decision (None if it never did): its wait.
        self.opened_at: datetime | None = None
        self.decision: Decision | None = None
        self.approvals: list[str] = []
        self._attempts = AttemptLog()

    @property
    def attempts(self) -> list[DecisionAttempt]:
        """Every accepted attempt and the last MAX_REFUSED_ATTEMPTS refused ones, in order."""
        return self._attempts.attempts

    @property
    def refused_attempts_dropped(self) -> int:
        """Refused attempts beyond the last MAX_REFUSED_ATTEMPTS, forgotten but counted."""
        return self._attempts.refused_dropped

    def configure(self, settings: VerificationSettings) -> None:
        self._settings = settings

    def learn_policy(self, policy: PlatformPolicy) -> None:
        """The platform's policy, as the worker read it at the start or for a decision."""
        self._policy = policy

    @property
    def policy(self) -> PlatformPolicy | None:
        """The platform's policy as last read (None before the run's first task)."""
        return self._policy

    @property
    def signatures_required(self) -> bool | None:
        """Whether a decision needs a verified token: the request's setting or the platform's
        policy (which a request cannot switch off); None while the policy is not known."""
        if self._settings.require_signed_decisions:
            return True
        return None if self._policy is None else self._policy.require_signed_decisions

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

    def await_analysis(self) -> None:
        """The bake and the steps are over but the canary analysis still runs."""
        self._phase = "analysing"
        self._bake_ends_at = None

    def open(self, now: datetime) -> None:
        self._phase = "open"
        self._bake_ends_at = None
        self.opened_at = now
        self._deadline = now + timedelta(seconds=self._settings.timeout_seconds)

    def carried(self) -> CarriedGate:
        """This open gate, for the run this one continues as."""
        assert self.is_open and self.opened_at and self._deadline, "only an open gate is carried"
        return CarriedGate(
            policy=self._policy,
            opened_at=self.opened_at,
            deadline=self._deadline,
            approvals=list(self.approvals),
            attempts=self.attempts,
            refused_attempts_dropped=self.refused_attempts_dropped,
        )

    def reopen(self, carried: CarriedGate) -> None:
        """Open again the gate an earlier run of this deployment carried over: the same
        deadline, approvals, policy and attempts."""
        self._phase = "open"
        self._bake_ends_at = None
        self._policy = carried.policy
        self.opened_at, self._deadline = carried.opened_at, carried.deadline
        self.approvals = list(carried.approvals)
        self._attempts = AttemptLog.restored(carried.attempts, carried.refused_attempts_dropped)

    def await_train(self, train: str) -> None:
        """Verification passed and the release train `train` decides (ecs_canary.train):
        no person's approval is taken here, and no timer runs (the train has its own)."""
        self._phase = "train"
        self._bake_ends_at = None
        self._train = train

    @property
    def deciding_train(self) -> str | None:
        """The release train whose decision the verified canary waits for, else None."""
        return self._train if self._phase == "train" and self.decision is None else None

    def follow_train(self, decision: TrainDecision, now: datetime) -> bool:
        """Take the train's decision as the gate's, with who decided (`via: train`); False
        when it comes too late (decided already, or the rolling deploy has begun) or is an
        approval before the canary passed its verification."""
        if self.decision is not None or self._phase == "closed":
            return False
        if decision.action == "approve" and self._phase != "train":
            return False
        attempt = DecisionInput.model_construct(by=decision.by, reason=decision.reason, token=None)
        self._record(decision.action, attempt, "train", now, None, signed=decision.signed)
        self.approvals = list(decision.approvals)
        by = decision.by or ANONYMOUS
        self._decide(decision.action, by, decision.reason, "train", now, decision.signed)
        return True

    def close(self) -> None:
        self._phase = "closed"
        self._bake_ends_at = self._deadline = None

    def postpone(self, paused: timedelta) -> None:
        """The run was paused for `paused`: the bake and the gate's timer stood still, so they
        end that much later."""
        if self._bake_ends_at is not None:
            self._bake_ends_at += paused
        if self._deadline is not None:
            self._deadline += paused

    @property
    def min_approvals(self) -> int:
        """Distinct approvals that decide the gate: the request's, or the policy's if higher."""
        floor = self._policy.min_approvals if self._policy else 1
        return max(self._settings.min_approvals, floor)

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

    def check(
        self, action: DecisionAction, attempt: DecisionInput, *, signed: bool = False
    ) -> None:
        """Raise GateRefusal if this attempt may not decide now; changes nothing. `signed`:
        `attempt.by` is a token's verified subject."""
        self._check(action, attempt.by or ANONYMOUS, signed)

    def check_before_verification(self, action: DecisionAction) -> None:
        """The rules that do not depend on who decides, for a token not verified yet (an Update
        validator cannot verify: that takes the worker's keys)."""
        self._check(action, None, signed=True)

    def _check(self, action: DecisionAction, by: str | None, signed: bool) -> None:
        if self.decision is not None:
            raise GateRefusal(
                f"the gate was already decided: {self.decision.action} by "
                f"{self.decision.by or ANONYMOUS} ({self.decision.via})"
            )
        if self._phase == "closed":
            raise GateRefusal("the gate is closed: the rolling deploy has begun")
        self.check_person(by, signed)
        if action == "reject":
            return
        self._check_approval(by)

    def check_person(self, by: str | None, signed: bool, hold: HoldAction | None = None) -> None:
        """Who may send a decision, or a pause, a resume or a freeze override: a signed one
        where signatures are required, and an approver (the request's and the policy's) when
        they are listed. `by` None: not known yet (a token still to verify); `hold`: the pause,
        resume or override a refusal names the command of."""
        if not signed and self.signatures_required:
            raise GateRefusal(self._unsigned_refusal(hold))
        requested = self._settings.approvers
        if by is not None and requested and by not in requested:
            raise GateRefusal(
                f"{by!r} may not decide this deployment; allowed: {', '.join(requested)}"
            )
        # The policy's approvers bound the request's, and decide a request that names none.
        allowed = self._policy.approvers if self._policy else []
        if by is not None and allowed and by not in allowed:
            raise GateRefusal(
                f"{by!r} may not decide: the platform policy ({POLICY_FILE_ENV}: approvers) "
                f"allows only {', '.join(allowed)}"
            )

    def _check_approval(self, by: str | None) -> None:
        if self._phase == "waiting_for_canary":
            raise GateRefusal("the canary is not steady yet; an approval must follow verification")
        if self._phase == "baking":
            raise GateRefusal("the canary is still baking; approve once the bake time has passed")
        if self._phase == "verifying":
            raise GateRefusal("verification steps are still running; approve once they have passed")
        if self._phase == "analysing":
            raise GateRefusal(
                "the canary analysis is still running; approve once its last interval has passed"
            )
        if self._phase == "train":
            raise GateRefusal(
                f"this canary is decided by its release train: approve the train {self._train}"
            )
        if by is not None and by in self.approvals:
            raise GateRefusal(
                f"{by!r} has already approved; {self.min_approvals} distinct approvers are needed"
            )

    def _unsigned_refusal(self, hold: HoldAction | None = None) -> str:
        whose = (
            "this deployment's request (verification.require_signed_decisions)"
            if self._settings.require_signed_decisions
            else (
                f"the platform policy (require_signed_decisions: {POLICY_FILE_ENV} or "
                f"{SIGNED_DECISIONS_ENV})"
            )
        )
        return (
            f"a signed decision is required by {whose}: send a token "
            f"(python starter.py {self._starter_command(hold)} {self._run} --key FILE or "
            "--token TOKEN)"
        )

    def _starter_command(self, hold: HoldAction | None) -> str:
        """The starter's command that sends it: the gate's (`approve|reject`, or a train's
        `train approve|reject`), or the same place's pause, resume or override."""
        if hold is None:
            return self._command
        return self._command.removesuffix("approve|reject") + hold

    def offer(
        self,
        action: DecisionAction,
        attempt: DecisionInput,
        via: DecisionSource,
        now: datetime,
        *,
        signed: bool = False,
    ) -> bool:
        """Apply an attempt if the rules allow it and record it either way."""
        try:
            self.check(action, attempt, signed=signed)
        except GateRefusal as refusal:
            self.refuse(action, attempt, via, now, str(refusal), signed=signed)
            return False
        self._record(action, attempt, via, now, refusal=None, signed=signed)
        by = attempt.by or ANONYMOUS
        if action == "reject":
            self._decide("reject", by, attempt.reason, via, now, signed)
        else:
            self.approvals.append(by)
            if len(self.approvals) >= self.min_approvals:
                self._decide("approve", by, attempt.reason, via, now, signed)
        return True

    def refuse(
        self,
        action: DecisionAction | HoldAction,
        attempt: DecisionInput | Claim,
        via: DecisionSource,
        now: datetime,
        refusal: str,
        *,
        signed: bool = False,
    ) -> None:
        """Record a refused attempt (the rules above, or a token the worker refused)."""
        self._record(action, attempt, via, now, refusal=refusal, signed=signed)

    def record_hold(
        self,
        action: HoldAction,
        attempt: DecisionInput,
        via: DecisionSource,
        now: datetime,
        *,
        signed: bool = False,
    ) -> None:
        """Record an accepted pause, resume or freeze override among the attempts (the audit),
        beside the decisions."""
        self._record(action, attempt, via, now, refusal=None, signed=signed)

    def automatic_approval_refusal(self, via: DecisionSource) -> str | None:
        """Why the policy as last read forbids the run to approve by itself `via` the bake
        (no approval asked for) or the gate's timeout; None if it does not."""
        policy, where = self._policy, f"the platform policy ({POLICY_FILE_ENV})"
        if policy is not None and via == "bake" and policy.require_approval:
            return f"{where} requires approval (require_approval)"
        if policy is not None and via == "timeout" and not policy.allow_timeout_approve:
            return f'{where} does not allow on_timeout "approve" (allow_timeout_approve is false)'
        return None

    def decide_automatically(
        self,
        action: DecisionAction,
        via: DecisionSource,
        reason: str,
        now: datetime,
        by: str = "ecs-canary",
    ) -> None:
        # Not a person's input: an alarm's name or a step's failure may be longer than a
        # person's `by` and `reason` may be.
        self._record(action, Claim(by, reason), via, now, None, signed=False)
        self._decide(action, by, reason, via, now, signed=False)

    def _decide(
        self,
        action: DecisionAction,
        by: str,
        reason: str | None,
        via: DecisionSource,
        now: datetime,
        signed: bool,
    ) -> None:
        self.decision = Decision(
            action=action,
            by=by,
            reason=reason,
            at=now,
            via=via,
            approvals=list(self.approvals),
            signed=signed,
        )

    def _record(
        self,
        action: DecisionAction | HoldAction,
        attempt: DecisionInput | Claim,
        via: DecisionSource,
        now: datetime,
        refusal: str | None,
        *,
        signed: bool,
    ) -> None:
        self._attempts.record(action, attempt.by, attempt.reason, now, via, refusal, signed=signed)
