"""What a release train's one gate per wave decides for the wave's canaries: the gate's own
decision relayed as each canary records it (who decided, and how), the first wave's approval
once more with `approval: "once"`, the train's own approval of an ungated wave, the stopped
line's rejection; and the gate's timer, which decides by `on_timeout` (an approval subject to
the platform policy, as a deployment's is) and stops while the train is paused.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import Gate
    from ecs_canary.models import Decision, DecisionAction
    from ecs_canary.text import duration_text
    from ecs_canary.train import TrainDecision, TrainRequest
    from workflows.decisions import DecisionDesk
    from workflows.hold import Hold
    from workflows.train_state import TrainState

# Who decides what no person decided: the train's own approvals and the line's rejections.
TRAIN = "ecs-canary-train"


def new_gate() -> Gate:
    """A gate of this run, whose refusals name the train's own commands."""
    info = workflow.info()
    return Gate(info.workflow_id, info.run_id, command="train approve|reject")


def approval(
    train: TrainRequest, gate: Gate, state: TrainState, gated: bool, wave: str
) -> TrainDecision | None:
    """The approval the wave's verified canaries are owed now, if any: the gate's; with
    `approval: "once"`, the first wave's, by whoever gave it; with "none", the train's."""
    decision = gate.decision
    if gated:
        if decision is None or decision.action != "approve":
            return None
        return relayed(wave, decision)
    first = state.waves[0]
    if train.approval == "once" and first.decision is not None:
        once = first.decision
        why = f"approved once for the train, at wave {first.name}: {once.reason or 'no reason'}"
        return relayed(wave, once, why)
    return own(wave, "approve", f'the train asks for no approval ("{train.approval}")')


def rejection(gate: Gate, state: TrainState, wave: str) -> TrainDecision:
    """The rejection the wave's running deployments get once the line stopped: the gate's,
    or the train's own."""
    decision = gate.decision
    if decision is not None and decision.action == "reject":
        return relayed(wave, decision)
    return own(wave, "reject", f"the line stopped: {state.stop_reason}")


def relayed(wave: str, decision: Decision, reason: str | None = None) -> TrainDecision:
    """A decision of the train's gate, as its canaries record it: who decided, and how."""
    return TrainDecision(
        train=workflow.info().workflow_id,
        wave=wave,
        action=decision.action,
        by=decision.by,
        reason=decision.reason if reason is None else reason,
        signed=decision.signed,
        approvals=decision.approvals if decision.action == "approve" else [],
    )


def own(wave: str, action: DecisionAction, reason: str) -> TrainDecision:
    """A decision no person took: the train's approval, or the stopped line's rejection."""
    return TrainDecision(
        train=workflow.info().workflow_id, wave=wave, action=action, by=TRAIN, reason=reason
    )


async def time_the_gate(
    train: TrainRequest, gate: Gate, desk: DecisionDesk, hold: Hold, stopped: Callable[[], bool]
) -> None:
    """The gate's timer: no decision within `timeout_seconds` decides by `on_timeout` (unless
    the line `stopped` meanwhile); an approval is subject to the platform policy, as a
    deployment's is."""
    limit = train.timeout_seconds
    if not await hold.timer(  # stops while the train is paused
        limit,
        f"Train gate: wait for approval ({duration_text(limit)})",
        lambda: gate.decision is not None or stopped(),
    ):
        return
    action: DecisionAction = train.on_timeout
    why = f"no decision within {duration_text(limit)}"
    if action == "approve":
        await desk.refresh_policy()
        if refused := gate.automatic_approval_refusal("timeout"):
            action, why = "reject", f"{why}; {refused}"
        await hold.before_next_step()
    if gate.decision is None:
        gate.decide_automatically(action, "timeout", why, workflow.now(), by=TRAIN)
