"""What people read about a run: Web UI details, log context and failure wording.

Pure functions of the run's state, kept out of the workflow class so that its `run()` reads as
the four stages, and so that the wording can be tested without a Temporal server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from ecs_canary.analysis import AnalysisStatus
from ecs_canary.analysis_text import interval_table, interval_verdict_text, summary_text
from ecs_canary.gate import Gate
from ecs_canary.models import Decision, DeploymentRequest, Stage
from ecs_canary.text import approvals_text, load_balancing_lines, utc_clock
from workflows.payloads import Unreadable
from workflows.state import DeploymentState

# The failure types of a rollout that was rolled back: by the workflow, or by ECS itself.
ROLLED_BACK_BY_ECS = "DeploymentRolledBack"
ROLLED_BACK = frozenset({"RolledBack", ROLLED_BACK_BY_ECS})


class StageFailure(Exception):
    """A stage failed; carries the stage and the reason in ECS's words."""

    def __init__(self, stage: Stage, reason: str, failure_type: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.failure_type = failure_type

    @classmethod
    def of(cls, err: BaseException, stage: Stage) -> StageFailure:
        """What ended `stage`, in the words a failed run reports."""
        if isinstance(err, StageFailure):
            return err
        kind, reason = failure_reason(err)
        return cls(stage, reason, kind)

    def rolled_back(self, to_previous: bool) -> StageFailure:
        """The rollout's failure once the rollback went through: `RolledBack` when the service
        is back on its previous task definition (a first deployment's is removed instead), or
        `DeploymentRolledBack` when ECS had rolled it back first (the workflow then only puts
        back the recorded count and configuration)."""
        rolled_back_by_ecs = self.failure_type == ROLLED_BACK_BY_ECS
        kind = "RolledBack" if to_previous and not rolled_back_by_ecs else self.failure_type
        return StageFailure(Stage.ROLLING_DEPLOY, self.reason, kind)

    def noting(self, note: str) -> StageFailure:
        """The same failure, with what the cleanup could not do appended to its reason."""
        return StageFailure(self.stage, f"{self.reason}; {note}", self.failure_type)


# Temporal refuses a failure over 2 MB (and the run's first task would then retry forever);
# a person reads the first few errors anyway.
_MAX_INVALID_ERRORS = 10
_MAX_INVALID_TEXT = 16_000


def invalid_request_text(err: ValidationError, payload: Any) -> str:
    """Why the request was refused: pydantic's own wording, cut to the first errors (with a
    count of the rest) and to a size any failure can carry; or why it could not be read."""
    if isinstance(payload, Unreadable):
        return f"Invalid deployment request: the input is not JSON it can read: {payload.why}"
    errors = err.errors(include_url=False, include_input=False)
    lines = [
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in errors[:_MAX_INVALID_ERRORS]
    ]
    if len(errors) > _MAX_INVALID_ERRORS:
        lines.append(f"... and {len(errors) - _MAX_INVALID_ERRORS} more errors")
    text = f"Invalid deployment request: {len(errors)} validation error(s)\n" + "\n".join(lines)
    return text if len(text) <= _MAX_INVALID_TEXT else text[: _MAX_INVALID_TEXT - 3] + "..."


def failure_reason(err: BaseException) -> tuple[str, str]:
    """(type, message) of what really went wrong, unwrapped from Temporal's activity error:
    the run's failure names AWS's code or the wait's verdict, not "ActivityError"."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", cause.message
    if isinstance(cause, TimeoutError):
        return "Timeout", f"timed out ({cause.type.name if cause.type else 'timeout'})"
    return type(cause).__name__, str(cause)


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
) -> str:
    """The Web UI's current details: the stage, the tasks, the last ECS event, when the bake
    ends, the open gate's deadline and the command that approves it, the approvals so far, each
    verification step's state, the canary analysis (its latest interval as a table) and the
    decision.

    They are drawn at a workflow task (`now` is its time) and shown as drawn until the next
    one, so every time here is an instant ("decide by 14:09:30 UTC"), never a countdown that
    would go stale on the page."""
    lines = [f"**Stage:** {state.stage.value}"]
    if state.running_count is not None:
        lines.append(f"**Running:** {state.running_count}/{state.desired_count}")
    if state.recent_events:
        lines.append(f"**Last ECS event:** {state.recent_events[-1]}")
    balanced = load_balancing_lines(state.targets, state.traffic, state.scaling, state.baseline)
    lines.extend(f"**{label}:** {text}" for label, text in balanced)
    if gate.bake_ends_at is not None:
        lines.append(f"**Bake:** until {utc_clock(gate.bake_ends_at, now)}")
    if gate.deadline is not None:
        lines.append(
            f"**Gate open:** decide by {utc_clock(gate.deadline, now)} (no decision by then: "
            f"{request.verification.on_timeout}); approve with `temporal workflow update "
            f'execute --workflow-id {workflow_id} --name approve --input \'{{"by":"you"}}\'`'
        )
    if gate.is_open or gate.approvals:
        lines.append(f"**Approvals:** {approvals_text(gate.approvals, gate.min_approvals)}")
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
    lines.append(f"**Service:** {request.service_name} on {request.cluster}")
    return "\n\n".join(lines)


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
