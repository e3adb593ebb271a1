"""What people read about a run: Web UI details, log context and the request's refusal.

Pure functions of the run's state, kept out of the workflow class so that its `run()` reads as
the four stages, and so that the wording can be tested without a Temporal server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ecs_canary.analysis import AnalysisStatus
from ecs_canary.analysis_text import interval_table, interval_verdict_text, summary_text
from ecs_canary.gate import Gate
from ecs_canary.hold import hold_lines
from ecs_canary.models import Decision, DeploymentRequest
from ecs_canary.text import approvals_text, load_balancing_lines, utc_clock
from workflows.payloads import Unreadable
from workflows.state import DeploymentState

# Temporal refuses a failure over 2 MB (and the run's first task would then retry forever);
# a person reads the first few errors anyway.
_MAX_INVALID_ERRORS = 10
_MAX_INVALID_TEXT = 16_000


def invalid_request_text(
    err: ValidationError, payload: Any, what: str = "deployment request"
) -> str:
    """Why the request was refused: pydantic's own wording, cut to the first errors (with a
    count of the rest) and to a size any failure can carry; or why it could not be read."""
    if isinstance(payload, Unreadable):
        return f"Invalid {what}: the input is not JSON it can read: {payload.why}"
    errors = err.errors(include_url=False, include_input=False)
    lines = [
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in errors[:_MAX_INVALID_ERRORS]
    ]
    if len(errors) > _MAX_INVALID_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_INVALID_ERRORS} more errors")
    text = f"Invalid {what}: {len(errors)} validation error(s)\n" + "\n".join(lines)
    return text if len(text) <= _MAX_INVALID_TEXT else text[: _MAX_INVALID_TEXT - 3] + "..."


def decision_text(decision: Decision | None) -> str | None:
    """`approve (update) by alice: error rate flat`: how and by whom the gate was decided."""
    if decision is None:
        return None
    who = f" by {decision.by}" if decision.by else ""
    why = f": {decision.reason}" if decision.reason else ""
    return f"{decision.action} ({decision.via}){who}{why}"


def current_details(
    request: DeploymentRequest,
    state: DeploymentState,
    gate: Gate,
    workflow_id: str,
    now: datetime,
    run_id: str | None = None,
) -> str:
    """The Web UI's current details: the stage, the tasks, the last ECS event, when the bake
    ends, the open gate's deadline and the command that approves it (naming the run, when
    known: a decision is for one run), the approvals so far, each verification step's state,
    the canary analysis (its latest interval as a table), the decision and when the watch
    after the rollout ends.

    They are drawn at a workflow task (`now` is its time) and shown as drawn until the next
    one, so every time here is an instant ("decide by 14:09:30 UTC"), never a countdown that
    would go stale on the page."""
    lines = [*hold_lines(state.hold, workflow_id, run_id, now), f"**Stage:** {state.stage.value}"]
    if state.running_count is not None:
        lines.append(f"**Running:** {state.running_count}/{state.desired_count}")
    if state.recent_events:
        lines.append(f"**Last ECS event:** {state.recent_events[-1]}")
    balanced = load_balancing_lines(state.targets, state.traffic, state.scaling, state.baseline)
    lines.extend(f"**{label}:** {text}" for label, text in balanced)
    if gate.bake_ends_at is not None:
        lines.append(f"**Bake:** until {utc_clock(gate.bake_ends_at, now)}")
    lines.extend(gate_lines(gate, request.verification.on_timeout, workflow_id, run_id, now))
    if gate.deciding_train is not None:
        lines.append(
            f"**Release train:** verified; waits for the decision of {gate.deciding_train}"
        )
    for step in state.verification_steps:
        shown: str = step.state
        if step.state == "running" and step.started_at is not None:
            shown += f" since {utc_clock(step.started_at, now)}"
        summary = f": {step.summary}" if step.summary else ""
        lines.append(f"**Verify {step.name} ({step.type}):** {shown}{summary}")
    if state.analysis is not None:
        lines.extend(_analysis_lines(state.analysis, now))
    if gate.decision is not None:
        lines.append(f"**Decision:** {decision_text(gate.decision)}")
    if state.watch_ends_at is not None:
        lines.append(
            f"**Watch:** alarms {', '.join(request.watch_alarms)} until "
            f"{utc_clock(state.watch_ends_at, now)}; an alarm or a cancel rolls the service back"
        )
    lines.append(f"**Service:** {request.service_name} on {request.cluster}")
    return "\n\n".join(lines)


def gate_lines(
    gate: Gate, on_timeout: str, workflow_id: str, run_id: str | None, now: datetime
) -> list[str]:
    """The open gate's deadline with the command that approves it, and the approvals so far
    (a deployment's gate, or a release train's)."""
    lines = []
    if gate.deadline is not None:
        this_run = f"{workflow_id} --run-id {run_id}" if run_id else workflow_id
        lines.append(
            f"**Gate open:** decide by {utc_clock(gate.deadline, now)} (no decision by then: "
            f"{on_timeout}); approve with `temporal workflow update "
            f'execute --workflow-id {this_run} --name approve --input \'{{"by":"you"}}\'`'
        )
    if gate.is_open or gate.approvals:
        lines.append(f"**Approvals:** {approvals_text(gate.approvals, gate.min_approvals)}")
    return lines


def _analysis_lines(analysis: AnalysisStatus, now: datetime) -> list[str]:
    """The analysis in one line, then its latest interval: when, its verdict, its metrics."""
    lines = [f"**Canary analysis:** {summary_text(analysis)}"]
    if analysis.intervals:
        latest = analysis.intervals[-1]
        window = f"{utc_clock(latest.started_at, now)} to {utc_clock(latest.ended_at, now)}"
        verdict = interval_verdict_text(latest, analysis.intervals_planned)
        lines.append(f"**Analysis {verdict}** ({window})\n\n{interval_table(latest)}")
    return lines


def log_context(
    request: DeploymentRequest, state: DeploymentState, workflow_id: str
) -> dict[str, Any]:
    """Key/value fields on every line the workflow logs, so one deployment's lines can be
    found among a hundred."""
    return {
        "cluster": request.cluster,
        "service": request.service_name,
        "stage": state.stage.value,
        "workflow_id": workflow_id,
    }


def unlisted_warning(missing: list[str]) -> str:
    return (
        f"Search attributes {', '.join(missing)} are not registered in this namespace, "
        "so this deployment will not show up in list queries; register them with "
        "`temporal operator search-attribute create --name <name> --type Keyword`"
    )


def short_arn(arn: str) -> str:
    """`family:revision` of a task definition ARN, for activity summaries."""
    return arn.rsplit("/", 1)[-1]
