"""Stage 2, Verification: the bake, the alarms and the gate, until something decides.

Kept apart from the workflow class because verification is where a canary earns its trust and
where it grows (verification steps come next); the workflow only asks it to run and then reads
the gate's decision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.alarms import AlarmActivities
    from ecs_canary.models import AlarmFiring, WatchAlarmsInput
    from ecs_canary.text import duration_text
    from workflows.analysis import CanaryAnalysis
    from workflows.calls import settle
    from workflows.continue_at_gate import GateContinuation
    from workflows.run_part import RunContext
    from workflows.state import DeploymentState
    from workflows.steps import StepRunner
    from workflows.train_member import let_the_train_decide


async def verify(
    run: RunContext,
    gate_opened: Callable[[], None],
    refresh_policy: Callable[[], Awaitable[None]],
    continuation: GateContinuation,
) -> None:
    """The bake, the verification steps and the canary analysis run side by side; the gate
    opens once all are through, and then a person, the gate's timer or an alarm decides. A
    rejection, an alarm or a cancel ends whatever still runs. `refresh_policy` reads the
    platform policy again before the run approves by itself; `continuation` continues the run
    as new at the open gate once its history is long (workflows.continue_at_gate)."""
    settings, state, gate = run.request.verification, run.state, run.gate
    steps = StepRunner(run) if settings.steps else None
    analysis = CanaryAnalysis(run) if settings.analysis is not None else None
    alarm_watch = watch_alarms(run, settings.alarms) if _alarms_to_watch(run) else None
    step_run = asyncio.ensure_future(steps.run(gate)) if steps is not None else None
    analysis_run = asyncio.ensure_future(analysis.run(gate)) if analysis is not None else None
    try:
        if settings.bake_seconds:
            gate.start_bake(workflow.now())
            bake = settings.bake_seconds
            await _wait_for_gate(run, alarm_watch, bake, f"Bake {duration_text(bake)}")
        if step_run is not None and gate.decision is None:
            if not step_run.done():
                gate.await_steps()
                await _wait_for_gate(run, alarm_watch, also=step_run.done)
            if step_run.done():
                step_run.result()
        if analysis_run is not None and gate.decision is None:
            if not analysis_run.done():
                gate.await_analysis()
                await _wait_for_gate(run, alarm_watch, also=analysis_run.done)
            if analysis_run.done():
                analysis_run.result()
        if gate.decision is not None:
            return
        a_step_failed = steps is not None and steps.any_failed
        marginal = analysis is not None and analysis.needs_a_person
        if run.request.train is not None:  # the release train decides, never a person here
            await let_the_train_decide(
                run,
                _why_approved(state),
                a_step_failed or marginal,
                lambda: _wait_for_gate(run, alarm_watch),
            )
            return
        if not settings.require_approval and not a_step_failed and not marginal:
            await refresh_policy()
            await run.hold.before_next_step()  # a paused run never decides by itself
            if gate.decision is not None:
                return
            if gate.automatic_approval_refusal("bake") is None:
                gate.decide_automatically("approve", "bake", _why_approved(state), workflow.now())
                return
            # The policy now asks for approval: a person decides.
        gate.open(workflow.now())
        gate_opened()
        limit = settings.timeout_seconds
        await _await_decision(run, alarm_watch, limit, refresh_policy, continuation)
    finally:
        # Steps first: a cancelled run_task step stops its test tasks before anything else.
        await _close_gate(run, (step_run, analysis_run, alarm_watch), continuation)


# A gate whose time ran out as its run continued as new times out at once (a timer is never 0).
_NO_TIME_LEFT = 0.001


async def verify_at_open_gate(
    run: RunContext,
    refresh_policy: Callable[[], Awaitable[None]],
    continuation: GateContinuation,
) -> None:
    """Verification for a run that continued as new at its open gate: the gate, carried over,
    waits for the rest of its time (the time it had left when the run was paused, if it was),
    with its alarms watched again."""
    gate, hold = run.gate, run.state.hold
    assert gate.deadline is not None and gate.opened_at is not None, "the gate is open"
    since = hold.paused.at if hold.paused is not None else workflow.now()
    timeout = run.request.verification.timeout_seconds
    left = (gate.deadline - max(since, gate.opened_at)).total_seconds()
    seconds = min(max(left, _NO_TIME_LEFT), timeout)
    alarms = run.request.verification.alarms
    alarm_watch = watch_alarms(run, alarms) if _alarms_to_watch(run) else None
    try:
        await _await_decision(run, alarm_watch, seconds, refresh_policy, continuation)
    finally:
        await _close_gate(run, (alarm_watch,), continuation)


async def _await_decision(
    run: RunContext,
    alarm_watch: asyncio.Task[AlarmFiring] | None,
    seconds: float,
    refresh_policy: Callable[[], Awaitable[None]],
    continuation: GateContinuation,
) -> None:
    """At the open gate: a person, an alarm or, after `seconds`, the gate's timer decides
    (`on_timeout`); a history grown long meanwhile continues the run as new, at this gate."""
    settings, gate = run.request.verification, run.gate
    limit = settings.timeout_seconds
    quiet_moment = asyncio.ensure_future(continuation.quiet_moment())
    try:
        timed_out = await _wait_for_gate(
            run,
            alarm_watch,
            seconds,
            f"Gate: wait for approval ({duration_text(limit)})",
            also=quiet_moment.done,
        )
    finally:
        if not quiet_moment.done():
            quiet_moment.cancel()
    quiet = quiet_moment.done() and not quiet_moment.cancelled()
    if gate.decision is None and not timed_out and quiet:
        continuation.continue_as_new()
    if timed_out:
        action, why = settings.on_timeout, f"no decision within {duration_text(limit)}"
        if action == "approve":
            await refresh_policy()
            if refused := gate.automatic_approval_refusal("timeout"):
                action, why = "reject", f"{why}; {refused}"
            await run.hold.before_next_step()
        if gate.decision is None:
            gate.decide_automatically(action, "timeout", why, workflow.now())


async def _close_gate(
    run: RunContext,
    side_tasks: tuple[asyncio.Task[Any] | None, ...],
    continuation: GateContinuation,
) -> None:
    """Close the gate and end what still runs beside it, in order, each waited for; except
    when the run continues as new at its gate, which stays open (a query that reaches the
    closed run shows it as the run left it) and takes nothing half done with it: its alarm
    watch ends with the run (workflows.continue_at_gate), and waiting for it would let messages
    in after the run's state was carried over."""
    if continuation.continuing:
        return
    run.gate.close()
    for side_task in side_tasks:
        if side_task is not None and not side_task.done():
            side_task.cancel()
            await settle(side_task)


def _alarms_to_watch(run: RunContext) -> bool:
    """The verification alarms are watched while the verification waits for something: a
    bake, a step, the analysis, a person or the release train. With nothing to wait for, the
    run approves at once and a watch would be cancelled as it starts; worse, its start and its
    cancel would straddle the policy's local activity (`refresh_policy`), and a workflow task
    that such a local activity outlasts records the start alone, which the run's replay (where
    the cancel drops the start) cannot reproduce."""
    settings = run.request.verification
    waits = (
        settings.bake_seconds > 0
        or bool(settings.steps)
        or settings.analysis is not None
        or settings.require_approval
        or run.request.train is not None
    )
    return bool(settings.alarms) and waits


def watch_alarms(run: RunContext, alarms: list[str]) -> asyncio.Task[AlarmFiring]:
    """Watch `alarms` (the verification alarms, or the watch's after the rollout) until one
    fires or the watch is cancelled."""
    request = run.request
    return run.calls.watch(
        AlarmActivities.watch_alarms,
        WatchAlarmsInput(
            region=request.region,
            alarms=alarms,
            poll_interval_seconds=request.poll_interval_seconds,
        ),
        summary=f"Watch alarms {', '.join(alarms)}",
    )


def _why_approved(state: DeploymentState) -> str:
    """`the bake time passed, every verification step passed and the canary analysis passed
    (score 100), with no alarm`: what `require_approval: false` approved on."""
    passed = ["the bake time passed"]
    if state.verification_steps:
        passed.append("every verification step passed")
    if state.analysis is not None:
        passed.append(f"the canary analysis passed (score {state.analysis.score:.0f})")
    if len(passed) == 1:
        return f"{passed[0]} with no alarm"
    return f"{', '.join(passed[:-1])} and {passed[-1]}, with no alarm"


async def _wait_for_gate(
    run: RunContext,
    alarm_watch: asyncio.Task[AlarmFiring] | None,
    seconds: float | None = None,
    summary: str = "",
    also: Callable[[], bool] = lambda: False,
) -> bool:
    """Wait for a decision, an alarm, `also()` or the timer; True when the timer decided. The
    timer stops while the run is paused (a resume moves the bake's end and the gate's deadline
    on), and an alarm that fired meanwhile rejects once the run is resumed."""
    gate = run.gate

    def ended() -> bool:
        return (
            gate.decision is not None
            or (alarm_watch is not None and alarm_watch.done())
            or also()
        )

    if seconds is None:
        await workflow.wait_condition(ended)
    elif await run.hold.timer(seconds, summary, ended):
        return True
    if gate.decision is None and alarm_watch is not None and alarm_watch.done():
        await run.hold.before_next_step()
        if gate.decision is not None:
            return False
        firing = alarm_watch.result()  # a failed watch fails the stage
        gate.decide_automatically(
            "reject",
            "alarm",
            f"alarm {firing.name}: {firing.reason}",
            workflow.now(),
            by=f"alarm:{firing.name}",
        )
    return False
