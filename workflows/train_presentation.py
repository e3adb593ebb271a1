"""What people read about a release train in the Web UI: a summary line (`train payments: wave
2/3, 140/300 done`), the gate, and a table of the current wave's deployments. Pure functions of
the train's state, drawn at a workflow task (`now` is its time), so every time is an instant."""

from __future__ import annotations

from datetime import datetime

from ecs_canary.gate import Gate
from ecs_canary.hold import hold_lines
from ecs_canary.train import TrainRequest, TrainWaveStatus
from workflows.presentation import decision_text, gate_lines
from workflows.train_state import TrainState

# Rows of the current wave's table: a wave of 600 is summed up by its counts.
_MAX_ROWS = 50


def train_summary(name: str, state: TrainState) -> str:
    """`train payments: wave 2/3, 140/300 done`."""
    rows = [row for wave in state.waves for row in wave.deployments]
    done = sum(1 for row in rows if row.stage == "finished")
    return f"train {name}: wave {state.wave}/{len(state.waves)}, {done}/{len(rows)} done"


def train_details(
    request: TrainRequest,
    state: TrainState,
    gate: Gate,
    workflow_id: str,
    run_id: str | None,
    now: datetime,
) -> str:
    summary = f"**{train_summary(request.name, state)}**"
    lines = [*hold_lines(state.hold, workflow_id, run_id, now), summary]
    counts = ", ".join(f"{count} {key}" for key, count in state.counts().items() if count)
    lines.append(f"**Deployments:** {counts}")
    lines.extend(gate_lines(gate, request.on_timeout, workflow_id, run_id, now))
    if gate.decision is not None:
        lines.append(f"**Decision:** {decision_text(gate.decision)}")
    if state.stop_reason is not None:
        lines.append(f"**Line stopped:** {state.stop_reason}")
    for wave in state.waves:
        lines.append(f"**Wave {wave.name}:** {wave.state}")
        if wave.state in ("running", "gate_open") or (
            wave.state == "stopped" and state.outcome is None
        ):
            lines.append(_wave_table(wave))
    return "\n\n".join(lines)


def _wave_table(wave: TrainWaveStatus) -> str:
    rows = ["| service | stage | outcome | verification or reason |", "| --- | --- | --- | --- |"]
    for row in wave.deployments[:_MAX_ROWS]:
        said = row.reason or row.verification or ""
        outcome = row.outcome.value if row.outcome else ""
        rows.append(f"| {row.service} | {row.stage} | {outcome} | {said} |")
    if len(wave.deployments) > _MAX_ROWS:
        rows.append(f"| ... and {len(wave.deployments) - _MAX_ROWS} more | | | |")
    return "\n".join(rows)
