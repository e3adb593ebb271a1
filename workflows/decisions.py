"""People's decisions on their way to the gate: parsed, verified when signed, one at a time.

Signals and Updates share this path. A decision with a token is verified by the worker (an
activity: keys and clock live there) and the verdict is recorded in the history, so a replay
after the keys rotate takes the same decision. The identity is then the token's `sub`, never
the payload's `by`.

Decisions are taken in arrival order: one still being verified holds back those that came
after it, and so does one that waits for the run's first task to learn the worker's signing
policy. An unsigned decision on a run that needs no signature takes no command at all, as
before signing existed, so recorded runs replay unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.decisions import verify_decision
    from ecs_canary.gate import GateRefusal
    from ecs_canary.models import (
        DecisionAction,
        DecisionInput,
        DecisionSource,
        DecisionVerdict,
        VerifyDecisionInput,
    )
    from ecs_canary.signing import token_shape_refusal
    from workflows.calls import decision_check
    from workflows.failures import failure_reason
    from workflows.payloads import Unreadable
    from workflows.run_part import RunContext


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


def _claimed_by(decision: Any) -> str | None:
    """`by` of a payload that failed to parse, when it is at least a name (for the record)."""
    by = decision.get("by") if isinstance(decision, dict) else None
    return by if isinstance(by, str) else None


class DecisionDesk:
    """Takes the decisions people send (signals and Updates) to the gate, one at a time."""

    def __init__(self, run: RunContext) -> None:
        self._gate = run.gate
        self._turn = asyncio.Lock()
        self._in_progress = 0
        self._closing = False

    def check(self, action: DecisionAction, payload: Any) -> None:
        """An Update validator's rules (raise GateRefusal; change nothing). What needs the
        worker, a token's verification or the worker's policy, is left to the handler."""
        decision = parse(payload)
        if decision.token is None:
            self._gate.check(action, decision)
            return
        shape = token_shape_refusal(decision.token)
        if shape is not None:
            raise GateRefusal(shape)
        self._gate.check_before_verification(action)

    async def take(self, action: DecisionAction, payload: Any, via: DecisionSource) -> str | None:
        """Verify the decision if it is signed, then offer it to the gate; the refusal, if any,
        is recorded among the attempts and returned."""
        self._in_progress += 1
        try:
            async with self._turn:
                return await self._take(action, payload, via)
        finally:
            self._in_progress -= 1

    async def learn_worker_policy(self, requires_signatures: bool) -> None:
        """The worker's signing policy, from the run's first task; returns once the decisions
        that waited for it (sent with the start) have been taken."""
        self._gate.learn_worker_policy(requires_signatures)
        if self._in_progress:
            await workflow.wait_condition(lambda: self._in_progress == 0)

    def close(self) -> None:
        """The run is ending: a decision waiting for the worker's policy waits no longer."""
        self._closing = True

    async def _take(self, action: DecisionAction, payload: Any, via: DecisionSource) -> str | None:
        try:
            decision = parse(payload)
        except GateRefusal as invalid:
            return self._refuse(action, DecisionInput(by=_claimed_by(payload)), via, str(invalid))
        if decision.token is not None:
            verdict = await self._verify(action, decision.token)
            attempt = DecisionInput(by=verdict.subject, reason=decision.reason)
            if verdict.refusal is not None:
                return self._refuse(action, attempt, via, verdict.refusal)
            if self._gate.offer(action, attempt, via, workflow.now(), signed=True):
                return None
            return self._gate.attempts[-1].refusal
        if self._gate.signatures_required is None:  # a decision sent with the run's start
            await workflow.wait_condition(
                lambda: self._gate.signatures_required is not None or self._closing
            )
            if self._gate.signatures_required is None:
                ended = "the deployment ended before the decision could be taken"
                return self._refuse(action, decision, via, ended)
        if self._gate.offer(action, decision, via, workflow.now()):
            return None
        return self._gate.attempts[-1].refusal

    async def _verify(self, action: DecisionAction, token: str) -> DecisionVerdict:
        try:
            return await workflow.execute_local_activity(
                verify_decision,
                VerifyDecisionInput(
                    token=token, workflow_id=workflow.info().workflow_id, action=action
                ),
                **decision_check(f"Verify the {action} token"),
            )
        except ActivityError as err:
            why = failure_reason(err)[1]
            return DecisionVerdict(refusal=f"the token could not be verified: {why}")

    def _refuse(
        self, action: DecisionAction, attempt: DecisionInput, via: DecisionSource, refusal: str
    ) -> str:
        self._gate.refuse(action, attempt, via, workflow.now(), refusal)
        return refusal
