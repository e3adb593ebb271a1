"""`starter.py train ...`: start a release train from a JSON file (`start FILE [--wait]`), see
where it stands (`status ID`), follow it (`watch ID`: a line per change of its progress), and
decide its current wave (`approve` / `reject ID`, with the same options as a deployment's).
See README, "Release trains"."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cli.commands import read_json, send_decision, task_queue
from cli.errors import CliError
from cli.format import (
    attempt_text,
    deadline_text,
    decision_commands,
    decision_text,
    hold_lines,
    one_line,
    plural,
    table_lines,
)
from cli.runs import QUERY_TIMEOUT
from ecs_canary.models import DeploymentRequest
from ecs_canary.names import TRAIN_WORKFLOW_TYPE
from ecs_canary.text import approvals_text
from ecs_canary.train import (
    TrainRequest,
    TrainResult,
    TrainStatus,
    request_too_large,
    service_named_twice,
)
from ecs_canary.web_ui import run_link

POLL_SECONDS = 1.0
TrainHandle = WorkflowHandle[Any, TrainResult]


def load_train(path: str) -> TrainRequest:
    """The validated train, or CliError(exit 2) with its problems on one line; a service named
    twice, and a request too large for Temporal to take, are refused here too, before anything
    starts."""
    raw = read_json(path, "train")
    try:
        request = TrainRequest.model_validate(raw)
    except ValidationError as err:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'train'}: {e['msg'].removeprefix('Value error, ')}"
            for e in err.errors()
        ]
        raise CliError(one_line(f"invalid train: {'; '.join(problems)}"), 2) from None
    if (twice := service_named_twice(request)) is not None:
        raise CliError(f"refused: {twice}", 2)
    if (too_large := request_too_large(request)) is not None:
        raise CliError(f"refused: {too_large}", 2)
    return request


def deployments_of(request: TrainRequest | None) -> list[DeploymentRequest]:
    """Every deployment of the train, in order (none without a train)."""
    return [d for wave in request.waves for d in wave.deployments] if request else []


def train_summary(request: TrainRequest) -> str:
    """`train payments: 3 services in 2 waves (approval per_wave)`."""
    services = plural(sum(len(wave.deployments) for wave in request.waves), "service")
    waves = plural(len(request.waves), "wave")
    return f"train {request.name}: {services} in {waves} (approval {request.approval})"


async def start(client: Client, args: argparse.Namespace, request: TrainRequest) -> int:
    workflow_id = request.workflow_id
    try:
        handle: TrainHandle = await client.start_workflow(
            TRAIN_WORKFLOW_TYPE,
            request.model_dump(mode="json"),
            id=workflow_id,
            task_queue=task_queue(args),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=train_summary(request),
            result_type=TrainResult,
        )
    except WorkflowAlreadyStartedError:
        raise CliError(
            f"a train named {request.name} is already running as workflow {workflow_id}; see "
            f"it with: python starter.py train status {workflow_id}"
        ) from None
    print(f"started {train_summary(request)}")
    print(f"workflow id: {workflow_id}")
    print(f"run id:      {handle.result_run_id}")
    print(f"web ui:      {run_link(client.namespace, workflow_id)}")
    if request.approval != "none":
        print("once every canary of a wave has passed, approve or reject the wave with:")
        signed = request.require_signed_decisions
        for action in ("approve", "reject"):
            for command in decision_commands(
                workflow_id, action, signed=signed, run_id=handle.result_run_id, train=True
            ):
                print(f"  {command}")
    print(f"see it with: python starter.py train status {workflow_id}", flush=True)
    if not args.wait:
        return 0
    return await _follow(handle)


async def _follow(handle: TrainHandle) -> int:
    """Print a line whenever the train's progress changes, then its result; exit 0 only when
    every service succeeded."""
    shown = ""
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        try:
            current = await _query(handle)
        except RPCError:
            current = None  # not answering yet (its first task); asked again next poll
        line = _progress_line(current) if current is not None else ""
        if line and line != shown:
            print(line, flush=True)
            shown = line
        await asyncio.sleep(POLL_SECONDS)
    result, error = await _result(handle)
    for line in _result_lines(result, error):
        print(line)
    return 0 if result is not None and result.outcome == "succeeded" else 1


def _progress_line(status: TrainStatus) -> str:
    wave = status.waves[status.wave - 1] if status.wave else None
    gate = " (gate open)" if status.gate_open else ""
    where = (
        f"wave {status.wave}/{len(status.waves)} {wave.name}: {wave.state}" if wave else "starting"
    )
    counts = ", ".join(f"{n} {key}" for key, n in status.counts.items() if n)
    return f"{where}{gate}; {counts}"


async def _result(handle: TrainHandle) -> tuple[TrainResult | None, str | None]:
    """The result, a stopped train's (from its error's details) or a cancelled one's (from the
    `status` query); else None and why."""
    try:
        return await handle.result(), None
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.details:
            try:
                return TrainResult.model_validate(cause.details[0]), None
            except ValidationError:
                pass
        try:
            current = await _query(handle)
        except RPCError:
            current = None
        if current is not None and current.result is not None:
            return current.result, None
        return None, one_line(getattr(cause, "message", None) or str(cause))


def _result_lines(result: TrainResult | None, error: str | None) -> list[str]:
    if result is None:
        return [f"outcome: unknown ({error})"]
    lines = [
        f"outcome: {result.outcome}" + (f" ({one_line(result.reason)})" if result.reason else "")
    ]
    rows = [
        {
            "wave": s.wave,
            "service": f"{s.service} on {s.cluster}",
            "outcome": s.outcome.value,
            "reason": one_line(s.reason or "-"),
        }
        for s in result.services
    ]
    lines.extend(table_lines(["wave", "service", "outcome", "reason"], rows))
    return lines


def train_status_lines(
    workflow_id: str, status: TrainStatus, now: datetime | None = None
) -> list[str]:
    """`train status`: the train, its gate, and a table of every service."""
    lines = [f"train:     {status.name} ({workflow_id})"]
    if status.wave:
        name = status.waves[status.wave - 1].name
        lines.append(f"wave:      {status.wave} of {len(status.waves)} ({name})")
    if status.gate_open and status.gate_deadline is not None:
        lines.append(
            f"gate:      open, {deadline_text(status.gate_deadline, now or datetime.now(UTC))}"
        )
    else:
        lines.append("gate:      " + ("decided" if status.decision else "not open"))
    lines.extend(hold_lines(status, now))
    lines.append(f"decision:  {decision_text(status.decision)}")
    if status.approvals:
        lines.append(f"approvals: {approvals_text(status.approvals, status.min_approvals)}")
    lines.extend(f"  - {attempt_text(a)}" for a in status.attempts if not a.accepted)
    lines.append("counts:    " + ", ".join(f"{n} {key}" for key, n in status.counts.items() if n))
    if status.outcome is not None:
        reason = status.result.reason if status.result else None
        lines.append(f"outcome:   {status.outcome}" + (f" ({one_line(reason)})" if reason else ""))
    rows = [
        {
            "wave": f"{wave.name} ({wave.state})",
            "service": f"{row.service} on {row.cluster}",
            "stage": row.stage,
            "outcome": row.outcome.value if row.outcome else "-",
            "verification or reason": one_line(row.reason or row.verification or "-"),
        }
        for wave in status.waves
        for row in wave.deployments
    ]
    lines.extend(
        table_lines(["wave", "service", "stage", "outcome", "verification or reason"], rows)
    )
    return lines


async def _query(handle: TrainHandle) -> TrainStatus:
    return await handle.query("status", result_type=TrainStatus, rpc_timeout=QUERY_TIMEOUT)


async def status(client: Client, args: argparse.Namespace) -> int:
    handle: TrainHandle = client.get_workflow_handle(args.workflow_id, result_type=TrainResult)
    try:
        current = await _query(handle)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no release train with workflow id {args.workflow_id}") from None
        raise CliError(f"cannot query {args.workflow_id}: {one_line(err.message)}") from None
    if args.json:
        print(current.model_dump_json(indent=2))
        return 0
    for line in train_status_lines(args.workflow_id, current):
        print(line)
    print(f"web ui:    {run_link(client.namespace, args.workflow_id)}")
    return 0


async def watch(client: Client, args: argparse.Namespace) -> int:
    """`train watch ID`: a line whenever the train's progress changes, then its result."""
    handle: TrainHandle = client.get_workflow_handle(args.workflow_id, result_type=TrainResult)
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no release train with workflow id {args.workflow_id}") from None
        raise
    return await _follow(handle)


async def decide(client: Client, args: argparse.Namespace) -> int:
    """`train approve|reject ID`: as a deployment's decision, for the train's current wave."""
    action: str = args.train_command
    as_decision = argparse.Namespace(**{**vars(args), "command": action})
    decision, current = await send_decision(client, as_decision, TrainStatus, "train status")
    if current is None:
        return 0
    if current.decision is not None:
        wave = current.waves[current.wave - 1].name if current.wave else "-"
        print(f"{action} accepted: {decision_text(current.decision)}")
        nxt = "promoted" if current.decision.action == "approve" else "rejected, and the line stops"
        print(f"every canary of wave {wave} will be {nxt}")
        print(f"see it with: python starter.py train status {args.workflow_id}")
    else:
        who = decision.by or "the token's subject"
        so_far = approvals_text(current.approvals, current.min_approvals)
        print(f"{action} by {who} recorded; approvals so far: {so_far}")
    return 0


# `train start` also takes the train `starter.py` loaded first.
TRAIN_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], Awaitable[int]]] = {
    "status": status,
    "watch": watch,
    "approve": decide,
    "reject": decide,
}
