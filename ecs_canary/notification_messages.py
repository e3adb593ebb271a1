"""What a notification posts, and what the notification activity takes and gives back.

The workflow sends facts (the event, the `status` at that moment, the gate's deadline); the
activity adds where the run is (workflow id, run id, namespace: its own activity info) and the
Web UI link (from the worker's environment, see `ecs_canary.web_ui`), then builds the body
here. So the words can change without touching workflow code, and what is posted is a pure
function of its arguments, tested without Temporal or a network.

Each event reads as one short message: what happened, the facts people act on, and for
`gate_open` the copy-paste commands that decide the gate. `slack` is Slack's incoming-webhook
JSON (`{"text", "blocks"}`, mrkdwn); `json` is the event name, the same words and links as
fields, and the full status, for receivers of one's own.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ecs_canary.analysis_text import summary_text
from ecs_canary.models import DeploymentStatus, Outcome, Stage, StageTiming
from ecs_canary.notifications import Notification, NotificationEvent
from ecs_canary.steps import StepState
from ecs_canary.strict import StrictModel
from ecs_canary.text import approvals_text, duration_text, utc_clock
from ecs_canary.train import TrainStatus

# Slack refuses a section text over 3000 characters; a reason or a summary is clipped well
# before, so one long failure message cannot make the whole notification bounce.
_SLACK_SECTION_LIMIT = 3000
_VALUE_LIMIT = 600


class GateFacts(StrictModel):
    """What people at an open gate need beyond `status`: the request's gate settings and the
    instant the gate decides by itself."""

    deadline: datetime | None
    timeout_seconds: float
    on_timeout: Literal["reject", "approve"]
    min_approvals: int
    approvers: list[str]


class NotificationInput(StrictModel):
    """One event for one receiver. `notification` carries `url_env`'s name, never its value:
    the activity reads the variable on the worker."""

    notification: Notification
    target_index: int
    event: NotificationEvent
    at: datetime  # when the event happened (workflow time)
    status: DeploymentStatus | TrainStatus
    gate: GateFacts | None = None  # gate_open only
    # A release train's wave, whose gate opened or decided (it has one gate per wave).
    wave: str | None = None


class NotificationOutcome(StrictModel):
    status_code: int
    attempts: int


@dataclass(frozen=True)
class RunLinks:
    """Where the run is: known to the activity (its info, the worker's environment), not sent
    by the workflow."""

    namespace: str
    workflow_id: str
    run_id: str
    web_ui: str


@dataclass(frozen=True)
class Message:
    """One event in words: a plain one-line headline, labelled facts (a list value reads as
    bullets) and, at the gate, the commands by action."""

    headline: str
    emoji: str
    facts: list[tuple[str, str | list[str]]]
    commands: dict[str, list[str]] = field(default_factory=dict)


def body(request: NotificationInput, run: RunLinks) -> dict[str, Any]:
    """The JSON document posted for `request` in its receiver's format."""
    message = build_message(request, run)
    if request.notification.format == "slack":
        return slack_body(message, run, request.event)
    return json_body(message, request, run)


def build_message(request: NotificationInput, run: RunLinks) -> Message:
    if isinstance(request.status, TrainStatus):
        return train_message(request.event, request.status, request.gate, request.at, run)
    if request.event == "gate_open":
        assert request.gate is not None, "the workflow sends the gate's facts with gate_open"
        return gate_open_message(request.status, request.gate, request.at, run)
    if request.event == "decided":
        return decided_message(request.status)
    if request.event == "frozen":
        return frozen_message(request.status, request.at, run)
    return finished_message(request.status)


# --- The events -----------------------------------------------------------------------------


def frozen_message(status: DeploymentStatus, at: datetime, run: RunLinks) -> Message:
    """A freeze window holds the run: which one, until when, what waits, and how to let this
    run go on anyway (an approver's `override_freeze`)."""
    assert status.frozen_until is not None, "frozen is sent once a freeze holds the run"
    waits = (
        "the canary deploy"
        if status.stage == Stage.CANARY_DEPLOY
        else f"the rolling deploy of {status.main_service} (the canary keeps serving)"
    )
    return Message(
        headline=(
            f"{status.main_service}: held by freeze window {status.frozen_window} until "
            f"{utc_clock(status.frozen_until, at)}"
        ),
        emoji=":snowflake:",
        facts=[
            ("Window", status.frozen_window or "-"),
            ("Until", utc_clock(status.frozen_until, at)),
            ("Waits", waits),
        ],
        commands={
            "override_freeze": decision_commands(
                run, "override_freeze", signed=bool(status.signed_decisions_required)
            )
        },
    )


def gate_open_message(
    status: DeploymentStatus, gate: GateFacts, at: datetime, run: RunLinks
) -> Message:
    """Someone must decide: what the canary is, how verification and the canary analysis
    went (its score and verdict), until when the gate waits and what happens then, and how to
    approve or reject it."""
    canary = status.canary_service
    if status.running_count is not None:
        canary += f", {status.running_count}/{status.desired_count} tasks running"
    if status.task_definition_arn:
        canary += f", task definition {_short_arn(status.task_definition_arn)}"
    then = "rejected" if gate.on_timeout == "reject" else "approved"
    waits = f"the gate waits {duration_text(gate.timeout_seconds)}, then the canary is {then}"
    decide_by = f"{utc_clock(gate.deadline, at)} ({waits})" if gate.deadline else waits
    approvals = approvals_text(status.approvals, gate.min_approvals)
    if gate.approvers:
        approvals += f"; may decide: {', '.join(gate.approvers)}"
    facts: list[tuple[str, str | list[str]]] = [
        ("Canary", canary),
        ("Verification", _steps_text(status.verification_steps)),
    ]
    if status.analysis is not None:
        facts.append(("Canary analysis", summary_text(status.analysis)))
    facts += [("Decide by", decide_by), ("Approvals", approvals)]
    return Message(
        headline=f"{status.main_service}: the canary waits for approval on {status.cluster}",
        emoji=":hourglass_flowing_sand:",
        facts=facts,
        commands={
            action: decision_commands(run, action, signed=bool(status.signed_decisions_required))
            for action in ("approve", "reject")
        },
    )


_HOW = {
    "signal": "the `{action}` signal",
    "update": "the `{action}` Update",
    "timeout": "the gate's timeout (`on_timeout: {action}`)",
    "alarm": "a CloudWatch alarm",
    "bake": "automatically: no approval is required",
    "step": "a failed verification step",
    "analysis": "the canary analysis's judge",
}


def decided_message(status: DeploymentStatus) -> Message:
    """Who decided, how, and why, and what the deployment does next."""
    decision = status.decision
    assert decision is not None, "decided is sent once the gate has a decision"
    verb = "approved" if decision.action == "approve" else "rejected"
    facts: list[tuple[str, str | list[str]]] = [
        ("How", _HOW[decision.via].format(action=decision.action)),
        ("Why", decision.reason or "no reason given"),
    ]
    if decision.approvals:
        facts.append(("Approvals", ", ".join(decision.approvals)))
    facts.append(
        (
            "Next",
            f"{status.canary_service} is deleted, then {status.main_service} rolls out the new "
            "task definition"
            if decision.action == "approve"
            else f"{status.canary_service} is deleted; {status.main_service} is not changed",
        )
    )
    return Message(
        headline=f"{status.main_service}: the canary was {verb} by {decision.by or 'anonymous'}",
        emoji=":white_check_mark:" if decision.action == "approve" else ":no_entry:",
        facts=facts,
    )


_ENDINGS = {
    Outcome.SUCCEEDED: ("the deployment succeeded", ":rocket:"),
    Outcome.REJECTED: ("the canary was rejected; the service is unchanged", ":no_entry:"),
    Outcome.FAILED: ("the deployment failed", ":x:"),
    Outcome.ROLLED_BACK: ("the deployment failed and was rolled back", ":rewind:"),
    Outcome.CANCELLED: ("the deployment was cancelled", ":octagonal_sign:"),
}


def finished_message(status: DeploymentStatus) -> Message:
    """How the run ended and why, how long each stage took, and whether the canary (and canary
    analysis's baseline) is gone."""
    result = status.result
    assert result is not None, "finished is sent once the run's result is known"
    ending, emoji = _ENDINGS[result.outcome]
    facts: list[tuple[str, str | list[str]]] = []
    if result.reason:
        facts.append(("Reason", result.reason))
    facts.append(("Stages", [_timing_text(timing) for timing in result.stages] or ["none"]))
    facts.append(("Canary", _deleted_text(result.canary_service, result.canary_deleted)))
    if status.baseline is not None and result.baseline_deleted is not None:
        facts.append(("Baseline", _deleted_text(status.baseline.service, result.baseline_deleted)))
    if result.task_definition_arn:
        facts.append(("Task definition", result.task_definition_arn))
    return Message(headline=f"{result.main_service}: {ending}", emoji=emoji, facts=facts)


def train_message(
    event: NotificationEvent,
    status: TrainStatus,
    gate: GateFacts | None,
    at: datetime,
    run: RunLinks,
) -> Message:
    """A release train's events: a wave's gate opened (every canary of the wave passed), the
    wave was decided, the train ended; with the counts per outcome."""
    wave = status.waves[status.wave - 1] if status.wave else None
    where = (
        f"train {status.name}, wave {wave.name} ({status.wave}/{len(status.waves)})"
        if wave
        else f"train {status.name}"
    )
    counts = ", ".join(f"{n} {key}" for key, n in status.counts.items() if n)
    facts: list[tuple[str, str | list[str]]] = [("Deployments", counts)]
    if event == "gate_open":
        assert gate is not None and wave is not None, "gate_open names the wave and its gate"
        facts.append(
            ("Verified", [f"{row.service}: {row.verification or '-'}" for row in wave.deployments])
        )
        then = "rejected" if gate.on_timeout == "reject" else "approved"
        waits = f"the gate waits {duration_text(gate.timeout_seconds)}, then the wave is {then}"
        facts.append(
            ("Decide by", f"{utc_clock(gate.deadline, at)} ({waits})" if gate.deadline else waits)
        )
        facts.append(("Approvals", approvals_text(status.approvals, gate.min_approvals)))
        signed = bool(status.signed_decisions_required)
        return Message(
            headline=f"{where}: every canary passed; the wave waits for approval",
            emoji=":hourglass_flowing_sand:",
            facts=facts,
            commands={
                action: decision_commands(run, action, signed, starter=f"train {action}")
                for action in ("approve", "reject")
            },
        )
    if event == "decided":
        decision = status.decision
        assert decision is not None, "decided is sent once the wave's gate has a decision"
        verb = "approved" if decision.action == "approve" else "rejected (the line stops)"
        facts.append(("Why", decision.reason or "no reason given"))
        return Message(
            headline=f"{where}: {verb} by {decision.by or 'anonymous'}",
            emoji=":white_check_mark:" if decision.action == "approve" else ":no_entry:",
            facts=facts,
        )
    result = status.result
    assert result is not None, "finished is sent once the train's result is known"
    if result.reason:
        facts.append(("Reason", result.reason))
    return Message(
        headline=f"train {status.name}: {result.outcome}",
        emoji=":rocket:" if result.outcome == "succeeded" else ":octagonal_sign:",
        facts=facts,
    )


def _deleted_text(service: str, deleted: bool) -> str:
    return f"{service} deleted" if deleted else f"{service} was NOT deleted: delete it by hand"


def decision_commands(
    run: RunLinks, action: str, signed: bool = False, starter: str | None = None
) -> list[str]:
    """The Temporal CLI's Update (it answers with the refusal, if any) and the starter's
    command, decided in the name of whoever pastes them (`$USER`, expanded by their shell); when
    decisions must be signed, with their IdP token ($ECS_CANARY_ID_TOKEN) or their own key.
    Both name the run (`--run-id`): a decision is for this run, not whichever runs next."""
    namespace = f" --namespace {shlex.quote(run.namespace)}" if run.namespace != "default" else ""
    this_run = f"{shlex.quote(run.workflow_id)} --run-id {shlex.quote(run.run_id)}"
    update = f"temporal workflow update execute{namespace} --workflow-id {this_run} "
    command = starter or action  # a release train's: `train approve`
    if signed:
        return [
            update + f'--name {action} --input "{{\\"token\\":\\"$ECS_CANARY_ID_TOKEN\\"}}"',
            f"python starter.py {command} {this_run} --key YOUR_KEY.pem",
        ]
    return [
        update + f'--name {action} --input "{{\\"by\\":\\"$USER\\"}}"',
        f'python starter.py {command} {this_run} --by "$USER"',
    ]


# --- The two formats ------------------------------------------------------------------------


def slack_body(message: Message, run: RunLinks, event: NotificationEvent) -> dict[str, Any]:
    """Slack's incoming-webhook JSON: `text` is what the phone notification shows, `blocks`
    the message itself."""
    facts = "\n".join(f"*{label}:* {_slack_value(value)}" for label, value in message.facts)
    sections = [f"{message.emoji} *{_escape(message.headline)}*", facts]
    for action, commands in message.commands.items():
        code = "\n".join(f"```{_escape(command)}```" for command in commands)
        sections.append(f"*{action.capitalize()}* (Temporal CLI, or the starter):\n{code}")
    link = f"<{run.web_ui}|Open the run in the Temporal Web UI>"
    if message.commands:
        link += " (or decide there: *More Actions → Send an Update*)"
    sections.append(link)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _SLACK_SECTION_LIMIT)}}
        for text in sections
    ]
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": _escape(f"ecs-canary {event} · {run.workflow_id} · run {run.run_id}"),
                }
            ],
        }
    )
    return {"text": _escape(message.headline), "blocks": blocks}


def json_body(message: Message, request: NotificationInput, run: RunLinks) -> dict[str, Any]:
    """The event with the same words and links as fields, and the full status."""
    document: dict[str, Any] = {
        "event": request.event,
        "at": request.at.isoformat(),
        "text": message.headline,
        "facts": {label: value for label, value in message.facts},
        "workflow_id": run.workflow_id,
        "run_id": run.run_id,
        "namespace": run.namespace,
        "web_ui": run.web_ui,
        "status": request.status.model_dump(mode="json"),
    }
    if message.commands:
        document["commands"] = message.commands
    if request.gate is not None:
        document["gate"] = request.gate.model_dump(mode="json")
    return document


# --- Wording helpers ------------------------------------------------------------------------


def _steps_text(steps: list[StepState]) -> str | list[str]:
    if not steps:
        return "no verification steps"
    return [
        f"{step.name} ({step.type}) {step.state}" + (f": {step.summary}" if step.summary else "")
        for step in steps
    ]


def _timing_text(timing: StageTiming) -> str:
    if timing.ended_at is None:
        return f"{timing.stage.value}: did not end"
    took = (timing.ended_at - timing.started_at).total_seconds()
    return f"{timing.stage.value}: {duration_text(round(took, 1))}"


def _short_arn(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _slack_value(value: str | list[str]) -> str:
    if isinstance(value, str):
        return _escape(_clip(value, _VALUE_LIMIT))
    return "".join(f"\n• {_escape(_clip(item, _VALUE_LIMIT))}" for item in value)


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
