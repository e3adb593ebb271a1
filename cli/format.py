"""What the starter prints: Web UI links, copy-paste commands and a deployment status in a few
readable lines.

The wording is a public contract (people paste the commands, scripts grep the lines), so it is
made in one place, by pure functions of their arguments (and of the environment and the clock
for defaults) that every command shares and that need no Temporal to test. The workflow
reports instants (the gate's deadline, the bake's end); what is left of them is computed here,
when it is printed.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
from datetime import UTC, datetime

from ecs_canary.analysis_text import summary_text
from ecs_canary.models import (
    Decision,
    DecisionAttempt,
    DeploymentRequest,
    DeploymentResult,
    DeploymentStatus,
    Paused,
    Stage,
    WaitProgress,
)
from ecs_canary.steps import StepState
from ecs_canary.text import (
    approvals_text,
    duration_text,
    load_balancing_lines,
    time_left,
    utc_clock,
)
from ecs_canary.train import TrainStatus

# What the printed commands say for `--by` when nobody can be named (see current_user).
NAME_PLACEHOLDER = "YOUR_NAME"
# ... and for a signed decision: the approver's key (starter.py keygen), or an IdP's token.
KEY_PLACEHOLDER = "YOUR_KEY.pem"
TOKEN_PLACEHOLDER = "YOUR_TOKEN"


def one_line(text: object) -> str:
    """Any message squeezed onto one line (stderr reasons must be one line)."""
    return " ".join(str(text).split())


def current_user() -> str | None:
    """Who runs this command: `$USER`, else the login name the system knows (getpass tries
    `$LOGNAME` and the like, then the password database); None when neither names anyone.
    The decision is recorded under this name, so it is never made up."""
    user = os.environ.get("USER")
    if user:
        return user
    try:
        return getpass.getuser() or None
    except (OSError, KeyError):  # no such variable and a uid the password database lacks
        return None


def decision_commands(
    workflow_id: str,
    action: str,
    user: str | None = None,
    *,
    signed: bool = False,
    run_id: str | None = None,
    train: bool = False,
) -> list[str]:
    """The Temporal CLI command and the starter's own for approving or rejecting a run (with
    `train`, a release train's: `starter.py train approve`); with `signed`, the ones that send
    a token (docs/signed-decisions.md). With `run_id` (wherever the run is known), both name
    it: a decision is for one run, and a signed one is bound to it."""
    wid = shlex.quote(workflow_id)
    run = f" --run-id {shlex.quote(run_id)}" if run_id else ""
    command = f"train {action}" if train else action
    if signed:
        payload = shlex.quote(json.dumps({"token": TOKEN_PLACEHOLDER}, separators=(",", ":")))
        return [
            f"temporal workflow update execute --workflow-id {wid}{run} --name {action} "
            f"--input {payload}",
            f"python starter.py {command} {wid}{run} --key {KEY_PLACEHOLDER}",
        ]
    who = user or current_user() or NAME_PLACEHOLDER
    payload = shlex.quote(json.dumps({"by": who}, separators=(",", ":")))
    return [
        f"temporal workflow signal --workflow-id {wid}{run} --name {action} --input {payload}",
        f"python starter.py {command} {wid}{run} --by {shlex.quote(who)}",
    ]


def clock(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def seconds_text(seconds: float | None) -> str:
    return "-" if seconds is None else duration_text(round(seconds, 1))


def summary(request: DeploymentRequest) -> str:
    images = ", ".join(request.images)
    return (
        f"Deploy {request.service_name} on {request.cluster}: {images} "
        f"(canary {request.canary.desired_count}, then {request.desired_count})"
    )


def details(request: DeploymentRequest) -> str:
    verification = request.verification
    if verification.require_approval:
        approval = (
            f"required, {verification.min_approvals} approval(s) within "
            f"{duration_text(verification.timeout_seconds)} (then {verification.on_timeout})"
        )
    elif verification.steps:
        approval = (
            "not required (approved when the bake time passes and every verification step "
            "passed, with no alarm)"
        )
    else:
        approval = "not required (approved when the bake time passes with no alarm)"
    lines = [
        f"**Service:** {request.service_name}",
        f"**Cluster:** {request.cluster}" + (f" ({request.region})" if request.region else ""),
        f"**Image(s):** {', '.join(request.images)}",
        f"**Task definition family:** {request.task_definition['family']}",
        f"**Canary:** {canary_text(request)}",
        f"**Desired count:** {request.desired_count}",
        f"**Approval:** {approval}",
    ]
    if verification.bake_seconds:
        lines.append(f"**Bake:** {duration_text(verification.bake_seconds)}")
    if verification.alarms:
        lines.append(f"**Alarms:** {', '.join(verification.alarms)}")
    if verification.steps:
        lines.append(f"**Verification steps:** {steps_text(request)}")
    if request.rolling.watch_seconds:
        lines.append(
            f"**Watch after the rollout:** {duration_text(request.rolling.watch_seconds)}, "
            f"alarms {', '.join(request.watch_alarms)}"
        )
    return "\n\n".join(lines)


def canary_text(request: DeploymentRequest) -> str:
    """`1 task(s) as myappCanary`, and a weighted canary's share of its listener rule."""
    text = f"{request.canary.desired_count} task(s) as {request.canary_service_name}"
    traffic = request.canary.traffic
    if traffic is None:
        return text
    return f"{text}, {traffic.weight_percent} % of listener rule {traffic.listener_rule_arn}"


def steps_text(request: DeploymentRequest) -> str:
    """`smoke (run_task), health (http); a failed step rejects the canary`."""
    verification = request.verification
    steps = ", ".join(f"{step.name} ({step.type})" for step in verification.steps)
    if verification.on_step_failure == "reject":
        return f"{steps}; a failed step rejects the canary"
    return f"{steps}; after a failed step a person decides"


def decision_text(decision: Decision | None) -> str:
    if decision is None:
        return "none yet"
    signed = ", signed" if decision.signed else ""
    text = f"{decision.action} by {decision.by or 'anonymous'} ({decision.via}{signed})"
    return text + (f": {decision.reason}" if decision.reason else "")


def attempt_text(attempt: DecisionAttempt) -> str:
    verdict = "accepted" if attempt.accepted else f"refused: {attempt.refusal}"
    signed = " (signed)" if attempt.signed else ""
    return f"{attempt.action} by {attempt.by or 'anonymous'}{signed} via {attempt.via}, {verdict}"


def deadline_text(deadline: datetime, now: datetime | None = None) -> str:
    """`decide by 14:09:30 UTC (4m30s left)`: the gate's deadline, and what is left of it at
    `now` (the moment of printing, by default): the workflow reports the instant only."""
    now = now or datetime.now(UTC)
    return f"decide by {utc_clock(deadline, now)} ({time_left(deadline, now)})"


def bake_text(ends_at: datetime, now: datetime | None = None) -> str:
    """`baking until 14:09:30 UTC (2m left)`, computed like `deadline_text`."""
    now = now or datetime.now(UTC)
    return f"baking until {utc_clock(ends_at, now)} ({time_left(ends_at, now)})"


def watch_text(ends_at: datetime, now: datetime | None = None) -> str:
    """`until 14:09:30 UTC (8m left); an alarm or a cancel rolls the service back`: the watch
    after the rollout, computed like `deadline_text`."""
    now = now or datetime.now(UTC)
    return (
        f"until {utc_clock(ends_at, now)} ({time_left(ends_at, now)}); "
        "an alarm or a cancel rolls the service back"
    )


def gate_text(status: DeploymentStatus, now: datetime | None = None) -> str:
    if status.gate_open:
        deadline = status.gate_deadline
        return "OPEN" + (f", {deadline_text(deadline, now)}" if deadline else "")
    if status.bake_ends_at is not None:
        return bake_text(status.bake_ends_at, now)
    if status.decision:
        return "decided"
    unfinished = [s for s in status.verification_steps if s.state in ("pending", "running")]
    if status.stage == Stage.VERIFICATION and unfinished:
        return f"closed, waiting for {plural(len(unfinished), 'verification step')}"
    analysing = status.analysis is not None and status.analysis.state in ("waiting", "running")
    if status.stage == Stage.VERIFICATION and analysing:
        return "closed, waiting for the canary analysis"
    return "closed"


def paused_text(paused: Paused) -> str:
    """`by alice at 2026-12-06 14:09:30 UTC: incident elsewhere`."""
    why = f": {one_line(paused.reason)}" if paused.reason else ""
    return f"by {paused.by} at {clock(paused.at)}{why}"


def hold_rows(
    status: DeploymentStatus | TrainStatus, now: datetime | None = None
) -> list[tuple[str, str]]:
    """(label, text) for a paused run and a frozen one (none for a run that is neither): the
    `status` lines and a row of `watch`'s live view."""
    rows = []
    if status.paused is not None:
        rows.append(("paused", f"PAUSED {paused_text(status.paused)}"))
    if status.frozen_until is not None:
        left = time_left(status.frozen_until, now or datetime.now(UTC))
        rows.append(
            (
                "frozen",
                f"by freeze window {status.frozen_window} until {clock(status.frozen_until)} "
                f"({left})",
            )
        )
    return rows


def hold_lines(status: DeploymentStatus | TrainStatus, now: datetime | None = None) -> list[str]:
    """`paused:    PAUSED by alice ...` and `frozen:    by freeze window ...`."""
    return [f"{label + ':':<10} {text}" for label, text in hold_rows(status, now)]


def status_approvals(status: DeploymentStatus) -> str:
    """`alice (1 of 2)`."""
    return approvals_text(status.approvals, status.min_approvals)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def table_lines(columns: list[str], rows: list[dict[str, str]]) -> list[str]:
    """A plain-text table: the columns' names in capitals, then one line per row, each column
    as wide as its widest cell."""
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
    lines.extend("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip() for row in rows)
    return lines


def step_name(step: StepState) -> str:
    """`verify smoke (run_task)`: how the starter names a verification step."""
    return f"verify {step.name} ({step.type})"


def step_text(step: StepState) -> str:
    """`verify smoke (run_task): passed — 1 task passed (exit code 0)`."""
    text = f"{step_name(step)}: {step.state}"
    if step.state == "running" and step.started_at is not None:
        text += f" since {clock(step.started_at)}"
    if step.summary:
        text += f" — {one_line(step.summary)}"
    return text


def steps_count_text(steps: list[StepState]) -> str:
    """`3: 1 passed, 1 running, 1 pending`."""
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.state] = counts.get(step.state, 0) + 1
    order = ("passed", "failed", "running", "pending", "cancelled")
    return f"{len(steps)}: " + ", ".join(f"{counts[s]} {s}" for s in order if s in counts)


def task_counts(
    status: DeploymentStatus | None, live: WaitProgress | None
) -> tuple[int | None, int | None]:
    """Running and desired tasks: live from the wait's heartbeat while a wait runs, else the
    counts the run last recorded."""
    if live is not None and live.running_count is not None:
        return live.running_count, live.desired_count
    if status is None:
        return None, None
    return status.running_count, status.desired_count


def status_lines(
    workflow_id: str,
    status: DeploymentStatus,
    live: WaitProgress | None = None,
    now: datetime | None = None,
) -> list[str]:
    running, desired = task_counts(status, live)
    counts = "-" if running is None else f"{running}/{desired} running"
    lines = [
        f"workflow:  {workflow_id}",
        f"service:   {status.main_service} on {status.cluster} (canary {status.canary_service})",
        f"stage:     {status.stage.value}"
        + (f" ({status.outcome.value})" if status.outcome else ""),
        f"gate:      {gate_text(status, now)}",
        *hold_lines(status, now),
        f"tasks:     {counts}",
        *(
            f"{label.lower() + ':':<10} {text}"
            for label, text in load_balancing_lines(
                status.targets, status.traffic, status.scaling, status.baseline
            )
        ),
        f"decision:  {decision_text(status.decision)}",
    ]
    if status.approvals:
        lines.append(f"approvals: {status_approvals(status)}")
    if status.watch_ends_at is not None:
        lines.append(f"watch:     {watch_text(status.watch_ends_at, now)}")
    if status.task_definition_arn:
        lines.append(f"task def:  {status.task_definition_arn}")
    if status.verification_steps:
        lines.append(f"steps:     {steps_count_text(status.verification_steps)}")
        lines.extend(f"  {step_text(step)}" for step in status.verification_steps)
    if status.analysis is not None:
        lines.append(f"analysis:  {summary_text(status.analysis)}")
    total = len(status.attempts) + status.refused_attempts_dropped
    lines.append(f"attempts:  {total}")
    if status.refused_attempts_dropped:
        lines.append(f"  ({status.refused_attempts_dropped} earlier refused attempts not kept)")
    lines.extend(f"  - {attempt_text(a)}" for a in status.attempts)
    lines.append("stages:")
    for timing in status.stages:
        took = (
            f"took {seconds_text((timing.ended_at - timing.started_at).total_seconds())}"
            if timing.ended_at
            else "running"
        )
        lines.append(f"  - {timing.stage.value:<15} started {clock(timing.started_at)}, {took}")
    if live and live.recent_events:
        lines.append("recent ECS events:")
        lines.extend(f"  {event}" for event in live.recent_events)
    return lines


def result_line(result: DeploymentResult) -> str:
    text = f"outcome: {result.outcome.value}"
    if result.reason:
        text += f" ({one_line(result.reason)})"
    return text


def outcome_line(result: DeploymentResult | None, error: str | None) -> str:
    """The last line of `watch`: the outcome, or why it is not known."""
    return result_line(result) if result is not None else f"outcome: unknown ({error})"
