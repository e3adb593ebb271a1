"""The starter's subcommands, one function each, looked up by name in `COMMANDS`.

Each takes the connected client and the parsed arguments, prints to stdout and returns the exit
code, or raises CliError (one-line reason, exit status): `starter.py` stays a thin argument
parser, and a command can be called (and tested) without a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.envconfig import ClientConfigProfile
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli.errors import CliError
from cli.format import (
    clock,
    decision_commands,
    decision_text,
    details,
    gate_text,
    hold_lines,
    one_line,
    status_approvals,
    status_lines,
    steps_text,
    summary,
    table_lines,
)
from cli.paused import paused_lines
from cli.progress import follow
from cli.runs import (
    QUERY_TIMEOUT,
    RunOf,
    continued_since,
    decision_run,
    describe,
    final_result,
    first_run_id,
    live_progress,
    query_status,
    run_handle,
)
from cli.signing import decision_input
from ecs_canary import search_attributes as sa
from ecs_canary.models import (
    DecisionInput,
    DeploymentRequest,
    DeploymentStatus,
    Stage,
)
from ecs_canary.names import TASK_QUEUE, WORKFLOW_TYPE, workflow_id_for
from ecs_canary.steps import StepKind
from ecs_canary.temporal import DEFAULT_ADDRESS
from ecs_canary.text import duration_text
from ecs_canary.train import TrainStatus
from ecs_canary.unprocessed_update import execute_update
from ecs_canary.web_ui import list_link, run_link

UPDATE_TIMEOUT_SECONDS = 60
# What an approve or reject answers: a deployment's status, or a release train's.
StatusT = TypeVar("StatusT", DeploymentStatus, TrainStatus)
_NAME = re.compile(r"^[A-Za-z0-9_.:/-]+$")


def temporal_address() -> str:
    """Where connect() will go: the same environment configuration, for error messages."""
    try:
        profile = ClientConfigProfile.load(profile=os.environ.get("TEMPORAL_PROFILE"))
        return profile.to_client_connect_config().get("target_host") or DEFAULT_ADDRESS
    except Exception:
        return DEFAULT_ADDRESS


def task_queue(args: argparse.Namespace) -> str:
    return getattr(args, "task_queue", None) or os.environ.get("TEMPORAL_TASK_QUEUE") or TASK_QUEUE


def read_json(path: str, what: str = "request") -> Any:
    """The file's JSON, or CliError(exit 2) saying why it cannot be read."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}", 2) from None
    except json.JSONDecodeError as err:
        raise CliError(f"invalid {what}: {path} is not valid JSON: {err}", 2) from None


def load_request(path: str) -> DeploymentRequest:
    """The validated request, or CliError(exit 2) with the first problems on one line."""
    raw = read_json(path)
    try:
        return DeploymentRequest.model_validate(raw)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            where = _step_location(error["loc"], raw) or ".".join(map(str, error["loc"]))
            message = _step_message(error) or error["msg"].removeprefix("Value error, ")
            problems.append(f"{where or 'request'}: {message}")
        raise CliError(one_line(f"invalid request: {'; '.join(problems)}"), 2) from None


def _step_location(loc: tuple[int | str, ...], raw: Any) -> str | None:
    """`verification.steps[1] (health, http).url` for an error in a verification step (pydantic
    says `verification.steps.1.http.url`, with the step's type as if it were a field); None for
    an error elsewhere."""
    if len(loc) < 3 or loc[:2] != ("verification", "steps") or not isinstance(loc[2], int):
        return None
    index, rest = loc[2], list(loc[3:])
    try:
        step = raw["verification"]["steps"][index]
    except (KeyError, IndexError, TypeError):
        step = None
    kind = step.get("type") if isinstance(step, dict) else None
    if rest and rest[0] == kind:
        rest = rest[1:]
    name = step.get("name") if isinstance(step, dict) else None
    label = ", ".join(str(part) for part in (name, kind) if isinstance(part, str) and part)
    where = f"verification.steps[{index}]" + (f" ({label})" if label else "")
    return ".".join([where, *map(str, rest)])


# Pydantic's words for a pattern, in a person's, for the fields of a step that have one.
_STEP_PATTERNS = {
    "name": "must be 1 to 64 letters, digits, '.', '_' or '-'",
    "url": "must be an http:// or https:// URL (no spaces)",
}


def _step_message(error: Any) -> str | None:
    """A clearer message for a step whose `type` is missing or unknown, or whose name or URL
    does not match its pattern; None for other errors."""
    loc = error["loc"]
    if loc[:2] != ("verification", "steps"):
        return None
    kinds = ", ".join(get_args(StepKind))
    if error["type"] == "union_tag_not_found":
        return f"a step needs a type: one of {kinds}"
    if error["type"] == "union_tag_invalid":
        return f"unknown step type {error['ctx']['tag']!r}: expected one of {kinds}"
    if error["type"] == "string_pattern_mismatch" and loc[-1] in _STEP_PATTERNS:
        return _STEP_PATTERNS[str(loc[-1])]
    return None


def _checked_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise CliError(f"invalid {what} {value!r}: letters, digits, - _ . : / only", 2)
    return value


async def deploy(client: Client, args: argparse.Namespace, request: DeploymentRequest) -> int:
    workflow_id = args.workflow_id or workflow_id_for(request.cluster, request.service_name)
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            request.model_dump(mode="json"),
            id=workflow_id,
            task_queue=task_queue(args),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=summary(request),
            static_details=details(request),
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"a deployment of {request.service_name} on {request.cluster} is already running "
            f"as workflow {workflow_id}; see it with: python starter.py status {workflow_id} "
            f"(or {run_link(client.namespace, workflow_id)})"
        ) from None
    print(f"started {summary(request)}")
    print(f"workflow id: {workflow_id}")
    print(f"run id:      {handle.result_run_id}")
    print(f"web ui:      {run_link(client.namespace, workflow_id)}")
    if request.verification.steps:
        print(f"verification steps: {steps_text(request)}")
    print("once the canary is verified, approve or reject it with:")
    signed = request.verification.require_signed_decisions
    for action in ("approve", "reject"):
        for command in decision_commands(
            workflow_id, action, signed=signed, run_id=handle.result_run_id
        ):
            print(f"  {command}")
    print(f"follow it with: python starter.py watch {workflow_id}", flush=True)
    if not args.wait:
        return 0
    return await follow(client, workflow_id, handle.result_run_id)


async def send_decision(
    client: Client, args: argparse.Namespace, result_type: type[StatusT], status_command: str
) -> tuple[DecisionInput, StatusT | None]:
    """Send `args.command` (approve or reject) to the current run of `args.workflow_id`, as an
    Update (its answer: the run's status; sent again if no worker processed it,
    ecs_canary.unprocessed_update) or, with --signal, a signal (None: not confirmed); CliError
    for a refusal or a run that ended. `status_command` shows where to look. A run that
    continues as new as the decision reaches it (a deployment at its gate after a flood of
    signals, workflows.continue_at_gate) is followed: its next run is the same deployment and
    takes the same decision."""
    action: str = args.command
    decision_for = decision_input(args)
    run_id = await decision_run(client, args.workflow_id, getattr(args, "run_id", None))
    print(f"{action} run {run_id} of {args.workflow_id}", flush=True)
    decision = decision_for(RunOf(args.workflow_id, run_id))
    for _ in range(_CONTINUATIONS_FOLLOWED):
        try:
            status = await _send(client, args, run_id, decision, result_type, status_command)
            return decision, status
        except RPCError as err:
            later = None
            if err.status in _CLOSING_STATUSES:
                later = await continued_since(client, args.workflow_id, run_id)
            if later is None:
                raise _send_failed(args, run_id, err, status_command) from None
            print(f"run {run_id} continued as new: {action} run {later}", flush=True)
            run_id = later
    raise CliError(f"cannot {action} {args.workflow_id}: its run kept continuing as new")


# A deployment continues as new only after a pause in its signals: one follow is the rule.
_CONTINUATIONS_FOLLOWED = 3
# The server's answers to a message for a run that is continuing as new ("workflow is
# closing") or has just done so ("aborted by closing workflow", "already completed").
_CLOSING_STATUSES = (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.NOT_FOUND)


async def _send(
    client: Client,
    args: argparse.Namespace,
    run_id: str,
    decision: DecisionInput,
    result_type: type[StatusT],
    status_command: str,
) -> StatusT | None:
    """`send_decision` to run `run_id` once: RPCError when the server refuses the message."""
    action: str = args.command
    handle = client.get_workflow_handle(args.workflow_id, run_id=run_id)
    if args.signal:
        await handle.signal(action, decision)
        sender = decision.by or "the token's subject"
        print(f"{action} signal sent to {args.workflow_id} by {sender} (not confirmed:")
        print(
            f"  a refused signal is only recorded; check: python starter.py "
            f"{status_command} {args.workflow_id})"
        )
        return None
    try:
        return await asyncio.wait_for(
            execute_update(handle, action, decision, result_type), UPDATE_TIMEOUT_SECONDS
        )
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        reason = getattr(cause, "message", None) or str(cause)
        raise CliError(f"{action} refused: {one_line(reason)}") from None
    except TimeoutError:
        raise CliError(
            f"no answer to {action} within {UPDATE_TIMEOUT_SECONDS}s: is a worker running?"
        ) from None


def _send_failed(
    args: argparse.Namespace, run_id: str, err: RPCError, status_command: str
) -> CliError:
    action, workflow_id = args.command, args.workflow_id
    if err.status == RPCStatusCode.NOT_FOUND:  # the run ended since it was looked up
        return CliError(
            f"{action} refused: run {run_id} of {workflow_id} has ended; nothing was "
            f"decided (check: python starter.py {status_command} {workflow_id})"
        )
    return CliError(f"cannot {action} {workflow_id}: {one_line(err.message)}")


async def decide(client: Client, args: argparse.Namespace) -> int:
    action: str = args.command
    decision, status = await send_decision(client, args, DeploymentStatus, "status")
    if status is None:
        return 0
    sender = decision.by or "the token's subject"
    if status.decision is not None:
        print(f"{action} accepted: {decision_text(status.decision)}")
        nxt = "promoted by a rolling deploy" if status.decision.action == "approve" else "deleted"
        print(f"the canary will be {nxt}; follow: python starter.py watch {args.workflow_id}")
    else:
        who = decision.by or next((a.by for a in reversed(status.attempts) if a.accepted), sender)
        print(f"{action} by {who} recorded; approvals so far: {status_approvals(status)}")
    return 0


async def _latest(
    client: Client, workflow_id: str
) -> tuple[WorkflowExecutionDescription, DeploymentStatus]:
    """The latest run of `workflow_id` and its `status` query's answer."""
    description = await describe(run_handle(client, workflow_id))
    try:
        current = await query_status(run_handle(client, workflow_id, description.run_id))
    except RPCError as err:
        raise CliError(f"cannot query {workflow_id}: {one_line(err.message)}") from None
    return description, current


async def status(client: Client, args: argparse.Namespace) -> int:
    description, current = await _latest(client, args.workflow_id)
    if args.json:
        print(current.model_dump_json(indent=2))
        return 0
    running = description.status == WorkflowExecutionStatus.RUNNING
    live = await live_progress(client, description) if running else None
    for line in status_lines(args.workflow_id, current, live):
        print(line)
    execution = description.status.name.lower() if description.status else "unknown"
    print(f"run:       {description.run_id} ({execution}, started {clock(description.start_time)})")
    print(f"web ui:    {run_link(client.namespace, args.workflow_id)}")
    return 0


def _since(started: datetime | None) -> str:
    if started is None:
        return "-"
    waited = (datetime.now(UTC) - started).total_seconds()
    return f"{clock(started)} ({duration_text(max(0, round(waited)))} ago)"


def waiting_query(service: str | None = None) -> str:
    """The visibility query for runs waiting at the verification gate (`pending`'s list and
    the Web UI link it prints)."""
    query = f"DeploymentStage='{Stage.VERIFICATION.value}' AND ExecutionStatus='Running'"
    if service:
        query += f" AND EcsService='{_checked_name(service, 'service name')}'"
    return query


async def pending(client: Client, args: argparse.Namespace) -> int:
    query = waiting_query(args.service)
    found = 0
    async for execution in client.list_workflows(query):
        found += 1
        handle = run_handle(client, execution.id, execution.run_id)
        print(f"{execution.id}  (run {execution.run_id})")
        try:
            current = await query_status(handle)
        except RPCError as err:
            print(f"  status:    unavailable ({one_line(err.message)})")
            continue
        started = next(
            (t.started_at for t in reversed(current.stages) if t.stage == Stage.VERIFICATION), None
        )
        print(f"  service:   {current.main_service} on {current.cluster}")
        print(f"  waiting:   since {_since(started)}")
        print(f"  gate:      {gate_text(current)}")
        for line in hold_lines(current):
            print(f"  {line}")
        if current.approvals:
            print(f"  approvals: {status_approvals(current)}")
        if execution.parent_id is not None:  # only a release train starts a deployment
            for line in await _train_decision_lines(client, execution.parent_id):
                print(line)
            continue
        signed = bool(current.signed_decisions_required)
        for action in ("approve", "reject"):
            command = decision_commands(
                execution.id, action, signed=signed, run_id=execution.run_id
            )[1]
            print(f"  {action + ':':<10} {command}")
    if not found:
        print("no deployment is waiting at a verification gate")
    print(f"web ui:      {list_link(client.namespace, query)}")
    paused = await paused_lines(client, args.service)  # at other stages, and trains
    if paused:
        print("paused, not at a gate:")
    for line in paused:
        print(f"  {line}")
    return 0


async def _train_decision_lines(client: Client, train_id: str) -> list[str]:
    """A deployment of a release train takes no decision of its own (it refuses one): the
    train's commands, for its current run, decide it with the rest of its wave."""
    lines = [f"  train:     {train_id} decides this canary with the rest of its wave"]
    try:
        run_id = (await client.get_workflow_handle(train_id).describe()).run_id
        current = await run_handle(client, train_id, run_id).query(
            "status", result_type=TrainStatus, rpc_timeout=QUERY_TIMEOUT
        )
    except RPCError as err:
        return [*lines, f"  train status: unavailable ({one_line(err.message)})"]
    signed = bool(current.signed_decisions_required)
    for action in ("approve", "reject"):
        command = decision_commands(train_id, action, signed=signed, run_id=run_id, train=True)
        lines.append(f"  {action + ':':<10} {command[1]}")
    return lines


async def _history_row(client: Client, execution: WorkflowExecution) -> dict[str, Any]:
    """One deployment: its last run (the query leaves out the runs that continued as new),
    from the start of its first."""
    outcome = execution.typed_search_attributes.get(sa.DEPLOYMENT_OUTCOME)
    handle = run_handle(client, execution.id, execution.run_id)
    started = await _deployment_start(client, execution)
    decided = "-"
    if execution.status == WorkflowExecutionStatus.RUNNING:
        try:
            current = await query_status(handle)
            decided = current.decision.by or "anonymous" if current.decision else "-"
        except RPCError:
            pass
        took = f"{duration_text(round((datetime.now(UTC) - started).total_seconds()))}+"
    else:
        result, _ = await final_result(handle)
        if result is not None:
            outcome = outcome or result.outcome.value
            decided = (result.decision.by or "anonymous") if result.decision else "-"
        closed = execution.close_time or execution.start_time
        took = duration_text(round((closed - started).total_seconds(), 1))
    return {
        "started": clock(started),
        "duration": took,
        "status": execution.status.name.lower() if execution.status else "unknown",
        "outcome": outcome or "-",
        "decided_by": decided,
        "workflow": f"{execution.id} / {execution.run_id}",
    }


async def _deployment_start(client: Client, execution: WorkflowExecution) -> datetime:
    """When the deployment began: its first run's start, for a run that continued from others
    (workflows.continue_at_gate)."""
    try:  # the list does not carry the first run's id; describe does
        described = await run_handle(client, execution.id, execution.run_id).describe()
        first = first_run_id(described)
        if first == execution.run_id:
            return execution.start_time
        return (await run_handle(client, execution.id, first).describe()).start_time
    except RPCError:  # the first run is past the namespace's retention
        return execution.start_time


async def history(client: Client, args: argparse.Namespace) -> int:
    query = f"EcsService='{_checked_name(args.service, 'service name')}'"
    if args.cluster:
        query += f" AND EcsCluster='{_checked_name(args.cluster, 'cluster')}'"
    # A deployment that continued as new at its gate is one row: its last run.
    query += " AND ExecutionStatus != 'ContinuedAsNew'"
    executions = [e async for e in client.list_workflows(query, limit=args.limit)]
    executions.sort(key=lambda e: e.start_time, reverse=True)
    if not executions:
        print(f"no deployments of {args.service} found")
        return 0
    rows = [await _history_row(client, e) for e in executions]
    columns = ["started", "duration", "status", "outcome", "decided_by", "workflow"]
    for line in table_lines(columns, rows):
        print(line)
    return 0


async def watch(client: Client, args: argparse.Namespace) -> int:
    return await follow(client, args.workflow_id)


async def analysis(client: Client, args: argparse.Namespace) -> int:
    # Imported here: altair takes a second to import, and only this command draws charts.
    from cli.analysis_report import analysis_lines, write_html

    _, current = await _latest(client, args.workflow_id)
    if current.analysis is None:
        raise CliError(f"{args.workflow_id} runs no canary analysis (verification.analysis)")
    for line in analysis_lines(args.workflow_id, current.analysis):
        print(line)
    if args.html:
        try:
            write_html(args.workflow_id, current.analysis, Path(args.html))
        except OSError as err:
            raise CliError(f"cannot write {args.html}: {err.strerror or err}") from None
        print(f"report written to {args.html}")
    return 0


# The subcommands other than `deploy` (which also takes the request `starter.py` loaded first).
COMMANDS: dict[str, Callable[[Client, argparse.Namespace], Awaitable[int]]] = {
    "approve": decide,
    "reject": decide,
    "status": status,
    "pending": pending,
    "history": history,
    "watch": watch,
    "analysis": analysis,
}
