"""Stage 2, Verification: the bake, the alarms and the gate, until something decides.

Kept apart from the workflow class because verification is where a canary earns its trust and
where it grows (verification steps come next); the workflow only asks it to run and then reads
the gate's decision.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import Gate
    from ecs_canary.models import AlarmFiring, VerificationSettings
    from ecs_canary.text import duration_text
    from workflows.ecs_calls import EcsCalls, settle


async def verify(
    gate: Gate, settings: VerificationSettings, ecs: EcsCalls, show: Callable[[], None]
) -> None:
    """Bake, then wait at the gate; a person, the gate's timer or an alarm decides. `show`
    refreshes the Web UI details whenever the gate changes phase."""
    alarm_watch = ecs.watch_alarms() if settings.alarms else None
    try:
        if settings.bake_seconds:
            gate.start_bake(workflow.now())
            show()
            bake = settings.bake_seconds
            await _wait_for_gate(gate, bake, alarm_watch, f"Bake {duration_text(bake)}")
            if gate.decision is not None:
                return
        if not settings.require_approval:
            gate.decide_automatically(
                "approve", "bake", "the bake time passed with no alarm", workflow.now()
            )
            return
        gate.open(workflow.now())
        show()
        limit = settings.timeout_seconds
        timed_out = await _wait_for_gate(
            gate, limit, alarm_watch, f"Gate: wait for approval ({duration_text(limit)})"
        )
        if timed_out:
            gate.decide_automatically(
                settings.on_timeout,
                "timeout",
                f"no decision within {duration_text(limit)}",
                workflow.now(),
            )
    finally:
        gate.close()
        if alarm_watch is not None and not alarm_watch.done():
            alarm_watch.cancel()
            await settle(alarm_watch)


async def _wait_for_gate(
    gate: Gate, seconds: float, alarm_watch: asyncio.Task[AlarmFiring] | None, summary: str
) -> bool:
    """Wait for a decision, an alarm or the timer; True when the timer decided."""
    try:
        await workflow.wait_condition(
            lambda: gate.decision is not None or (alarm_watch is not None and alarm_watch.done()),
            timeout=seconds,
            timeout_summary=summary,
        )
    except builtins.TimeoutError:
        return True
    if gate.decision is None and alarm_watch is not None:
        firing = alarm_watch.result()  # a failed watch fails the stage
        gate.decide_automatically(
            "reject",
            "alarm",
            f"alarm {firing.name}: {firing.reason}",
            workflow.now(),
            by=f"alarm:{firing.name}",
        )
    return False
