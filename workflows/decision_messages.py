"""The approve and reject messages (a signal and an Update each, with the same payloads, tokens
and refusals), shared by a deployment and a release train: each workflow class inherits them,
and both take decisions through its `DecisionDesk` (workflows.decisions). `_check` and `_take`
also serve the pause, resume and override_freeze messages (workflows.hold).

A run whose request is invalid fails at once with InvalidRequest: a decision sent to it is
refused (Update) or ignored (signal), saying why."""

from __future__ import annotations

from typing import Any, ClassVar

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import GateRefusal, UpdateRefusal
    from ecs_canary.models import DecisionSource
    from workflows.decisions import Action, DecisionDesk
    from workflows.payloads import NO_ARGUMENT, read_argument


class DecisionMessages:
    # What the run is, in a refusal: "deployment", "train".
    RUN_KIND: ClassVar[str]
    # Set by the workflow's __init__ (the desk only when the request is valid).
    _desk: DecisionDesk
    _invalid: str | None

    def status(self) -> Any:
        """The workflow's `status` query, which an Update answers with."""
        raise NotImplementedError

    @workflow.signal(
        name="approve",
        description="Approve the canary (a release train's: every canary of its wave); a "
        "refusal is recorded.",
    )
    async def approve_signal(self, decision: RawValue = NO_ARGUMENT) -> None:
        await self._take("approve", decision, "signal")

    @workflow.signal(
        name="reject",
        description="Reject the canary (a release train's: its wave, which stops the line); a "
        "refusal is recorded.",
    )
    async def reject_signal(self, decision: RawValue = NO_ARGUMENT) -> None:
        await self._take("reject", decision, "signal")

    @workflow.update(
        name="approve",
        description="Approve the canary (a release train's: every canary of its wave), e.g. "
        '{"by": "alice", "reason": "error rate flat"} or {"token": "<JWT>"}; answers with the '
        "status, or with why the approval was refused.",
    )
    async def approve_update(self, decision: RawValue = NO_ARGUMENT) -> Any:
        await self._take("approve", decision, "update")
        return self.status()

    @approve_update.validator
    def _validate_approve(self, decision: RawValue = NO_ARGUMENT) -> None:
        self._check("approve", decision)

    @workflow.update(
        name="reject",
        description="Reject the canary (a release train's: its wave, which stops the line), "
        'e.g. {"by": "alice", "reason": "error rate up"} or {"token": "<JWT>"}; answers with '
        "the status, or with why the rejection was refused.",
    )
    async def reject_update(self, decision: RawValue = NO_ARGUMENT) -> Any:
        await self._take("reject", decision, "update")
        return self.status()

    @reject_update.validator
    def _validate_reject(self, decision: RawValue = NO_ARGUMENT) -> None:
        self._check("reject", decision)

    def _signal_arrived(self) -> None:
        """A decision signal arrived, before anything reads it. Nothing by default; a
        deployment's gate waits for a pause in them before it continues as new
        (workflows.continue_at_gate)."""

    def _check(self, action: Action, decision: RawValue) -> None:
        if self._invalid is not None:
            raise GateRefusal(f"this {self.RUN_KIND} will not run: {self._invalid}")
        self._desk.check(action, read_argument(decision))

    async def _take(self, action: Action, decision: RawValue, via: DecisionSource) -> None:
        if self._invalid is not None:
            return  # the run fails at once with InvalidRequest; there is no gate to decide
        if via == "signal":
            self._signal_arrived()
        refusal = await self._desk.take(action, read_argument(decision), via)
        if refusal is not None and via == "update":
            raise UpdateRefusal(refusal)
