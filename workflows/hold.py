"""Holding a run where it is: a person's pause, and the platform's freeze windows.

A deployment and a release train each have one `Hold` on their state's `HoldState`
(ecs_canary.hold); the decision desk applies `pause`, `resume` and `override_freeze` to that
state, and the run's code asks the hold at three kinds of places:

- **Before a next step** (`before_next_step`: a stage, a verification step, an automatic
  decision, a wave): a paused run waits there. What is in flight (an ECS call, a wait for
  steady state, a step's activity) finishes; nothing after it starts until `resume`.
- **A timer that decides by itself** (`timer`: the bake, the gate's timeout, an analysis
  interval, a train gate's timeout) stops counting while the run is paused and, once resumed,
  runs for the time it had left. A run that is paused never decides by itself.
- **Before a rollout** (`wait_out_freeze`: the start of a run, the rolling deploy, a train's
  next wave): while a freeze window of the policy holds, a durable timer waits until it ends,
  unless someone overrides freezes for this run (`override_freeze`).

None of this takes a command unless the run is paused or frozen: the history of a run that
neither pauses nor meets a freeze is the same as without it. A cancel reaches the run in
any of these waits and it cleans up as it always does.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from ecs_canary.freeze import freeze_at
    from ecs_canary.gate import Gate
    from ecs_canary.hold import HOLD_ACTIONS, HoldState
    from ecs_canary.models import DecisionSource, HoldAction, Paused
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.text import duration_text, utc_clock
    from workflows.payloads import NO_ARGUMENT

def pause_or_resume(state: HoldState, gate: Gate, paused: Paused | None, now: datetime) -> None:
    """Pause the run (`paused`) or resume it (None). The bake and the gate's timer stood still
    while it was paused, so a resume moves their end on by the time paused, at once (the
    timers themselves resume with what they had left, `Hold.timer`)."""
    if paused is None and state.paused is not None:
        gate.postpone(now - state.paused.at)
    state.paused = paused


def serve_hold_messages(
    check: Callable[[HoldAction, RawValue], None],
    take: Callable[[HoldAction, RawValue, DecisionSource], Awaitable[None]],
    status: Callable[[], Any],
) -> None:
    """Register `pause`, `resume` and `override_freeze`, each as a signal and as an Update
    (which answers with the run's `status`, or fails with why it was refused), on the running
    workflow (from its `@workflow.init`, so a message sent with the start finds them): a
    deployment's and a train's are the same, on their own `check` (the Update's validator)
    and `take` (the decision desk's path, a refusal raised for an Update). Each takes
    `{"by", "reason"}` or `{"token", "reason"}`, as a decision does (README, "Pause, resume and
    freeze windows")."""
    for action in HOLD_ACTIONS:
        workflow.set_signal_handler(action, _signal(take, action))
        workflow.set_update_handler(
            action, _update(take, status, action), validator=_validator(check, action)
        )


def _signal(
    take: Callable[[HoldAction, RawValue, DecisionSource], Awaitable[None]], action: HoldAction
) -> Callable[[RawValue], Awaitable[None]]:
    async def signal(payload: RawValue = NO_ARGUMENT) -> None:
        await take(action, payload, "signal")

    return signal


def _update(
    take: Callable[[HoldAction, RawValue, DecisionSource], Awaitable[None]],
    status: Callable[[], Any],
    action: HoldAction,
) -> Callable[[RawValue], Awaitable[Any]]:
    async def update(payload: RawValue = NO_ARGUMENT) -> Any:
        await take(action, payload, "update")
        return status()

    return update


def _validator(
    check: Callable[[HoldAction, RawValue], None], action: HoldAction
) -> Callable[[RawValue], None]:
    def validate(payload: RawValue = NO_ARGUMENT) -> None:
        check(action, payload)

    return validate


class Hold:
    """What holds one run (a deployment or a train) and the waits that respect it."""

    def __init__(self, state: HoldState) -> None:
        self.state = state

    @property
    def paused(self) -> bool:
        return self.state.paused is not None

    async def before_next_step(self) -> None:
        """Return once the run is not paused (at once if it is not)."""
        if self.paused:
            await workflow.wait_condition(lambda: not self.paused)

    async def timer(
        self,
        seconds: float,
        summary: str,
        done: Callable[[], bool] = lambda: False,
        postponed: Callable[[timedelta], None] = lambda _: None,
    ) -> bool:
        """Wait for `done()` or `seconds` of unpaused time; True when the time ran out. Each
        pause stops the clock and tells `postponed` how long it lasted once resumed (an
        analysis interval ends that much later); a timer that runs out while the run is paused (it
        was paused in the same workflow task) waits for the resume too."""
        left = timedelta(seconds=seconds)
        while True:
            if self.paused:
                paused_at = workflow.now()
                await workflow.wait_condition(lambda: done() or not self.paused)
                postponed(workflow.now() - paused_at)
                if done():
                    return False
            started = workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: done() or self.paused,
                    timeout=left.total_seconds(),
                    timeout_summary=summary,
                )
            except builtins.TimeoutError:
                await self.before_next_step()
                return not done()
            if done():
                return False
            left -= workflow.now() - started

    async def wait_out_freeze(
        self, policy: PlatformPolicy | None, frozen: Callable[[], None] = lambda: None
    ) -> None:
        """Wait while a freeze window of `policy` holds (a durable timer until it ends), unless
        freezes were overridden for this run; `frozen` is told when a freeze begins to hold the
        run. Then wait while the run is paused."""
        windows = policy.freeze_windows if policy is not None else []
        state = self.state
        while windows and state.freeze_overridden_by is None:
            freeze = freeze_at(windows, workflow.now())
            if freeze is None:
                break
            state.frozen(freeze.window, freeze.until)
            frozen()
            left = (freeze.until - workflow.now()).total_seconds()
            workflow.logger.info(f"Frozen by {freeze.window} until {freeze.until.isoformat()}")
            try:
                await workflow.wait_condition(
                    lambda: state.freeze_overridden_by is not None,
                    timeout=max(left, 0.001),
                    timeout_summary=(
                        f"Freeze window {freeze.window}: hold until "
                        f"{utc_clock(freeze.until, workflow.now())} ({duration_text(left)})"
                    ),
                )
            except builtins.TimeoutError:
                continue  # ended: another window may have opened since
        state.thawed()
        await self.before_next_step()
