"""People's decisions on their way to the gate: parsed, checked by the worker, one at a time.

Signals and Updates share this path. A decision the gate could take goes to the worker (an
activity: the platform policy, keys and clock live there), which reads the policy again and
verifies the token of a signed one; the verdict is recorded in the history, so a replay after
the keys rotate or the policy changes takes the same decision. The identity is then the
token's verified `sub`, never the payload's `by`. A token's `jti` is accepted once per
deployment: its run and the runs it continued from at its gate.

A decision the run can refuse by itself (an unreadable payload, a gate that is not open or
already decided, an unsigned decision where the policy it knows requires a token, a name that
is not an approver) is refused and recorded without asking the worker: it takes no command
and little time (the Web UI details, which show no refusals, stay as drawn), so a flood of
them costs the history nothing but the signals themselves. A worker that had to replay 10,000 of
them (restarted, the run not cached) took 1.5-1.9 s to answer `status` on 2 loaded cores, about
a fifth of its replay's CPU spent here, the rest in the SDK (README, "A flood of refused
signals"); the refusal is recorded as a tuple (ecs_canary.attempt_log), and the run continues
as new at its gate before its history is that long (workflows.continue_at_gate).

Decisions are taken in arrival order: one still being checked holds back those that came
after it, and so does one that waits for the run's first task to learn the platform policy.

`pause`, `resume` and `override_freeze` (ecs_canary.hold) take the same path, under the same
approver and signing rules (their tokens are for their own action), and are recorded among the
attempts; they change the run's hold instead of deciding the gate.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.decisions import verify_decision
    from ecs_canary.gate import ANONYMOUS, Claim, Gate, GateRefusal
    from ecs_canary.hold import HOLD_ACTIONS, HoldState
    from ecs_canary.models import (
        MAX_BY_LENGTH,
        DecisionAction,
        DecisionInput,
        DecisionSource,
        DecisionVerdict,
        HoldAction,
        Paused,
        VerifyDecisionInput,
    )
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.signing import token_shape_refusal
    from workflows.calls import LOCAL_ACTIVITY_FAILED, decision_check
    from workflows.failures import failure_reason
    from workflows.hold import pause_or_resume
    from workflows.payloads import Unreadable


def parse(decision: Any) -> DecisionInput:
    """The payload as a DecisionInput (none at all is an anonymous decision); GateRefusal,
    saying what is wrong, for anything else."""
    if decision is None:
        return DecisionInput()
    if isinstance(decision, Unreadable):
        raise GateRefusal(f"invalid decision: not JSON the workflow can read: {decision.why}")
    try:
        return DecisionInput.model_validate(decision)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'decision'}: {e['msg']}" for e in err.errors()
        )
        raise GateRefusal(f"invalid decision: {problems}") from None


# What a person may send: a decision for the gate, or a pause, a resume, a freeze override.
Action = DecisionAction | HoldAction
_HOLDS: dict[str, HoldAction] = {action: action for action in HOLD_ACTIONS}


def _claimed_by(decision: Any) -> str | None:
    """`by` of a payload that failed to parse, when it is at least a name (for the record)."""
    by = decision.get("by") if isinstance(decision, dict) else None
    return by if isinstance(by, str) and len(by) <= MAX_BY_LENGTH else None


class DecisionDesk:
    """Takes the decisions people send (signals and Updates) to the gate, one at a time."""

    def __init__(
        self,
        gate: Gate,
        hold: HoldState | None = None,
        earlier_run_ids: list[str] | None = None,
        used_token_ids: list[str] | None = None,
    ) -> None:
        """`earlier_run_ids` and `used_token_ids`: what the runs this one continued from at
        the gate knew (workflows.continue_at_gate): a token for one of them is for this
        deployment, and a `jti` used there stays used."""
        self._gate = gate
        self._hold = hold if hold is not None else HoldState()
        self._turn = asyncio.Lock()
        self._in_progress = 0
        self._closing = False
        self.earlier_run_ids = list(earlier_run_ids or [])
        # The `jti` of every token verified on this deployment: each one decides once.
        self._used_token_ids: set[str] = set(used_token_ids or [])

    @property
    def used_token_ids(self) -> list[str]:
        """The `jti` of every token verified on this deployment so far, sorted."""
        return sorted(self._used_token_ids)

    def check(self, action: Action, payload: Any) -> None:
        """An Update validator's rules (raise GateRefusal; change nothing). What needs the
        worker, a token's verification or the policy as it reads it now, is left to the
        handler."""
        self._check(action, parse(payload))

    def _check(self, action: Action, decision: DecisionInput) -> None:
        """The rules the run can apply by itself, with the policy it last learned."""
        hold = _HOLDS.get(action)
        if decision.token is None:
            if hold is not None:
                self._check_hold(hold, decision.by or ANONYMOUS, signed=False)
            elif action in ("approve", "reject"):
                self._gate.check(action, decision)
            return
        shape = token_shape_refusal(decision.token)
        if shape is not None:
            raise GateRefusal(shape)
        if hold is not None:
            self._check_hold(hold, None, signed=True)
        elif action in ("approve", "reject"):
            self._gate.check_before_verification(action)

    def _check_hold(self, action: HoldAction, by: str | None, *, signed: bool) -> None:
        """Whether the run's hold can take `action` now, and from whom (the gate's rules on
        who may decide; `by` None: a token still to verify)."""
        refusal = self._hold.refusal(action)
        if refusal is not None:
            raise GateRefusal(refusal)
        self._gate.check_person(by, signed, action)

    async def take(self, action: Action, payload: Any, via: DecisionSource) -> str | None:
        """Verify the decision if it is signed, then offer it to the gate; the refusal, if any,
        is recorded among the attempts and returned."""
        self._in_progress += 1
        try:
            async with self._turn:
                return await self._take(action, payload, via)
        finally:
            self._in_progress -= 1

    async def learn_policy(self, policy: PlatformPolicy) -> None:
        """The platform policy, from the run's first task; returns once the decisions that
        waited for it (sent with the start) have been taken."""
        self._gate.learn_policy(policy)
        if self._in_progress:
            await workflow.wait_condition(lambda: self._in_progress == 0)

    async def refresh_policy(self) -> None:
        """The platform policy as the worker reads it now, before the run approves by itself
        (the bake passed, the gate timed out): a policy tightened since the last decision
        applies to that approval too. Unreadable, the last one read stands."""
        verdict = await self._ask_worker("approve", None)
        if verdict.policy is not None:
            self._gate.learn_policy(verdict.policy)

    def serve(self, gate: Gate) -> None:
        """Take decisions for `gate` from now on (a release train's next wave); a token used
        at an earlier gate of the run stays used."""
        self._gate = gate

    def close(self) -> None:
        """The run is ending: a decision waiting for the worker's policy waits no longer."""
        self._closing = True

    async def _take(self, action: Action, payload: Any, via: DecisionSource) -> str | None:
        try:
            decision = parse(payload)
        except GateRefusal as invalid:
            # Recorded as claimed, though the model would refuse it (a lone surrogate).
            return self._refuse(action, Claim(_claimed_by(payload)), via, str(invalid))
        if self._gate.signatures_required is None:  # a decision sent with the run's start
            await workflow.wait_condition(
                lambda: self._gate.signatures_required is not None or self._closing
            )
            if self._gate.signatures_required is None:
                ended = "the deployment ended before the decision could be taken"
                return self._refuse(action, decision, via, ended)
        try:  # refused by what the run knows already: not worth asking the worker
            self._check(action, decision)
        except GateRefusal as refused:
            return self._refuse(action, self._unproven(decision), via, str(refused))
        return await self._decide(action, decision, via)

    async def _decide(
        self, action: Action, decision: DecisionInput, via: DecisionSource
    ) -> str | None:
        """Ask the worker (the policy now, the token's verdict), then offer it to the gate."""
        verdict = await self._ask_worker(action, decision.token)
        if verdict.policy is not None:
            self._gate.learn_policy(verdict.policy)
        if verdict.refusal is not None:
            return self._refuse(action, self._unproven(decision), via, verdict.refusal)
        signed = decision.token is not None
        if signed:
            if verdict.jti is not None and verdict.jti in self._used_token_ids:
                used = f"the token {verdict.jti!r} (jti) was already used on this run"
                return self._refuse(action, self._unproven(decision), via, used)
            if verdict.jti is not None:
                self._used_token_ids.add(verdict.jti)
            decision = DecisionInput(by=verdict.subject, reason=decision.reason)
        hold = _HOLDS.get(action)
        if hold is not None:
            return self._take_hold(hold, decision, via, signed)
        assert action in ("approve", "reject"), "a decision, when it is no hold action"
        if self._gate.offer(action, decision, via, workflow.now(), signed=signed):
            return None
        return self._gate.attempts[-1].refusal

    def _take_hold(
        self, action: HoldAction, decision: DecisionInput, via: DecisionSource, signed: bool
    ) -> str | None:
        """Apply a pause, a resume or a freeze override if the rules allow it now, and record
        it either way."""
        by, now = decision.by or ANONYMOUS, workflow.now()
        try:
            self._check_hold(action, by, signed=signed)
        except GateRefusal as refused:
            self._gate.refuse(action, decision, via, now, str(refused), signed=signed)
            return str(refused)
        self._gate.record_hold(action, decision, via, now, signed=signed)
        if action == "override_freeze":
            self._hold.freeze_overridden_by = by
        else:
            paused = Paused(by=by, reason=decision.reason, at=now) if action == "pause" else None
            pause_or_resume(self._hold, self._gate, paused, now)
        return None

    @staticmethod
    def _unproven(decision: DecisionInput) -> DecisionInput:
        """What the audit records of a refused decision: a token's claims prove nothing, so
        who a refused token names is never shown as who decided."""
        return decision if decision.token is None else DecisionInput(reason=decision.reason)

    async def _ask_worker(self, action: Action, token: str | None) -> DecisionVerdict:
        """The platform policy as the worker reads it now, and a token's verdict."""
        info = workflow.info()  # the token must be for this very run
        request = VerifyDecisionInput(
            token=token,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            action=action,
            earlier_run_ids=self.earlier_run_ids,
        )
        try:
            return await workflow.execute_local_activity(
                verify_decision,
                request,
                **decision_check(
                    f"Verify the {action} token" if token else f"Check the {action} policy"
                ),
            )
        except LOCAL_ACTIVITY_FAILED as err:
            why = failure_reason(err)[1]
            return DecisionVerdict(refusal=f"the token could not be verified: {why}")

    def _refuse(
        self,
        action: Action,
        attempt: DecisionInput | Claim,
        via: DecisionSource,
        refusal: str,
    ) -> str:
        self._gate.refuse(action, attempt, via, workflow.now(), refusal)
        return refusal
