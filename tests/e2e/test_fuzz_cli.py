"""Malformed input through the `temporal` CLI, which skips the starter's own checks.

Each malformed request must fail its run in the first workflow task with InvalidRequest. It
makes no ECS call, and `temporal workflow describe` must show no workflow task left failing
and being retried. Each malformed decision must be refused when sent as an Update, and
recorded as a refused attempt when sent as a signal.

The requests come from one valid request, changed by a fixed list of mutations. Each mutation
is also checked against the model here, so the list cannot hold a change the model takes.
All runs start at once, so one test covers them in seconds.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from ecs_canary.models import DeploymentRequest
from tests.helpers import (
    Done,
    assert_failed_at_once,
    cli_start,
    request_file,
    status,
    temporal_cli,
    wait_until,
)
from tests.helpers.fuzzing import nested

T = TypeVar("T")
REMOVE = object()
# CLI processes at a time (the machine may have two cores, and the worker shares them).
CLI_AT_ONCE = 6


def _http(**fields: Any) -> dict[str, Any]:
    return {"name": "smoke", "type": "http", "url": "http://127.0.0.1:9/health", **fields}


# (what, where (a path into the request; () is the whole of it), the value put there, what the
# failure message must say)
MALFORMED: list[tuple[str, tuple[Any, ...], Any, str]] = [
    # missing and unknown fields
    ("no cluster", ("cluster",), REMOVE, "cluster"),
    ("no task definition", ("task_definition",), REMOVE, "task_definition"),
    ("no service definition", ("service_definition",), REMOVE, "service_definition"),
    ("unknown top-level field", ("canary_count",), 1, "canary_count"),
    ("unknown container field", ("task_definition", "containerDefinitions", 0, "tag"), "x", "tag"),
    ("unknown verification field", ("verification", "approver"), ["alice"], "approver"),
    # wrong types
    ("cluster is a number", ("cluster",), 5, "cluster"),
    ("service name is null", ("service_name",), None, "service_name"),
    ("service name is a list", ("service_name",), ["myapp"], "service_name"),
    ("task definition is a string", ("task_definition",), "myapp:1", "task_definition"),
    ("service definition is a list", ("service_definition",), [], "service_definition"),
    ("canary is a string", ("canary",), "Canary", "canary"),
    ("poll interval is a word", ("poll_interval_seconds",), "fast", "poll_interval_seconds"),
    ("max failed tasks is a fraction", ("max_failed_tasks",), 1.5, "max_failed_tasks"),
    ("notifications is an object", ("notifications",), {}, "notifications"),
    ("desiredCount is a string", ("service_definition", "desiredCount"), "3", "desiredCount"),
    ("desiredCount is true", ("service_definition", "desiredCount"), True, "desiredCount"),
    ("region with spaces", ("region",), "us east 1", "region"),
    ("cluster with a slash", ("cluster",), "team/ecs", "cluster"),
    ("containers is an object", ("task_definition", "containerDefinitions"), {}, "containerDef"),
    ("the request is null", (), None, "DeploymentRequest"),
    ("the request is a sentence", (), "deploy myapp please", "DeploymentRequest"),
    ("the request is a list", (), [], "DeploymentRequest"),
    # Unicode and odd strings
    ("Cyrillic service name", ("service_name",), "мойапп", "letters, digits"),
    ("emoji in service name", ("service_name",), "app🚀", "letters, digits"),
    ("NUL in service name", ("service_name",), "my\x00app", "letters, digits"),
    ("Cyrillic а in the suffix", ("canary",), {"suffix": "Canаry"}, "suffix"),
    ("blank family", ("task_definition", "family"), "   ", "family must not be empty"),
    ("100,000-character service name", ("service_name",), "a" * 100_000, "longer than 255"),
    ("right-to-left mark in url_env", ("notifications",), [{"url_env": "\u202eURL"}], "url_env"),
    # negative and huge counts and durations
    ("negative canary count", ("canary", "desired_count"), -1, "desired_count"),
    ("negative desiredCount", ("service_definition", "desiredCount"), -3, "desiredCount"),
    ("no failed task allowed", ("max_failed_tasks",), 0, "max_failed_tasks"),
    ("negative min approvals", ("verification", "min_approvals"), -1, "min_approvals"),
    (
        "10^30 approvals of one approver",
        ("verification",),
        {"approvers": ["alice"], "min_approvals": 10**30},
        "min_approvals",
    ),
    (
        "11 test tasks",
        ("verification", "steps"),
        [{**_http(), "type": "run_task", "count": 11}],
        "count",
    ),
    ("negative bake", ("verification", "bake_seconds"), -1, "bake_seconds"),
    ("gate timeout 0", ("verification", "timeout_seconds"), 0, "timeout_seconds"),
    (
        "step timeout 1e300 s",
        ("verification", "steps"),
        [_http(timeout_seconds=1e300)],
        "timeout_seconds",
    ),
    # deep nesting (within the 200 levels Temporal's JSON decoding takes)
    ("family nested 150 deep", ("task_definition", "family"), nested(150), "nest more than"),
    ("tags nested 100 deep", ("service_definition", "tags"), nested(100), "nest more than"),
    (
        "test overrides nested 100 deep",
        ("verification", "steps"),
        [{"name": "t", "type": "run_task", "overrides": {"containerOverrides": nested(100)}}],
        "nest more than",
    ),
    # steps and notifications
    ("unknown step type", ("verification", "steps"), [_http(type="shell")], "type"),
    ("two steps of one name", ("verification", "steps"), [_http(), _http()], "unique"),
    ("ftp step URL", ("verification", "steps"), [_http(url="ftp://x/")], "url"),
    (
        "url and url_env",
        ("notifications",),
        [{"url": "http://x", "url_env": "ECS_CANARY_WEBHOOK_X"}],
        "exactly one",
    ),
    (
        "url_env names a credential",
        ("notifications",),
        [{"url_env": "AWS_SECRET_ACCESS_KEY"}],
        "starts with ECS_CANARY_WEBHOOK_",
    ),
    (
        "url_env names the payload key file",
        ("notifications",),
        [{"url_env": "ECS_CANARY_PAYLOAD_KEY_FILE"}],
        "starts with ECS_CANARY_WEBHOOK_",
    ),
    ("11 notifications", ("notifications",), [{"url": "http://x"}] * 11, "notifications"),
    (
        "an event twice",
        ("notifications",),
        [{"url": "http://x", "events": ["finished"] * 2}],
        "more than once",
    ),
    ("serviceName set", ("service_definition", "serviceName"), "other", "serviceName"),
]


def _changed(request: dict[str, Any], path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    *parents, last = path
    node: Any = request
    for key in parents:  # a section the valid request leaves out is added
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    if value is REMOVE:
        del node[last]
    else:
        node[last] = value
    return request


async def _bounded(limit: asyncio.Semaphore, call: Awaitable[T]) -> T:
    async with limit:
        return await call


async def _start(
    client: Client, task_queue: str, runs: Any, name: str, path: Path
) -> WorkflowHandle:
    """`temporal workflow start --input-file PATH` under its own workflow id."""
    workflow_id = f"fuzz-{name}-{task_queue}"
    started = await cli_start(client, task_queue, workflow_id, "--input-file", str(path))
    assert started.code == 0, started.err
    return await runs.track(workflow_id)


async def _settled(handle: WorkflowHandle) -> None:
    """Until the run has closed, or its first workflow task failed and is being retried
    (which would go on forever)."""

    async def settled() -> bool:
        described = await handle.describe()
        retried = described.raw_description.pending_workflow_task.attempt > 1
        return described.status != WorkflowExecutionStatus.RUNNING or retried

    await wait_until(settled, timeout=30, every=0.1)


async def _described(client: Client, workflow_id: str) -> dict[str, Any]:
    done = await temporal_cli(
        client, "workflow", "describe", "--workflow-id", workflow_id, "-o", "json"
    )
    assert done.code == 0, done.err
    described: dict[str, Any] = json.loads(done.out)
    return described


async def _fails_at_once(client: Client, handle: WorkflowHandle, expect: str) -> None:
    """Failed with InvalidRequest in its first workflow task: as `temporal workflow describe`
    shows it (closed, failed, no workflow task pending), and as its history has it."""
    await _settled(handle)
    described = await _described(client, handle.id)
    assert "pendingWorkflowTask" not in described, described["pendingWorkflowTask"]
    assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_FAILED"
    assert described["closeEvent"]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED"
    message = await assert_failed_at_once(handle, "InvalidRequest")
    assert message.startswith("Invalid deployment request") and expect in message


def _refused_here(what: str, request: Any, expect: str) -> None:
    """The mutation really is malformed: the model refuses it, saying `expect`."""
    with pytest.raises(ValidationError) as refused:
        DeploymentRequest.model_validate(request)
    assert expect in str(refused.value), what


async def test_malformed_requests_fail_at_once_without_an_ecs_call(
    client, worker, task_queue, requests, emulator, tmp_path, runs
):
    assert len(MALFORMED) >= 30
    files = []
    for index, (what, path, value, expect) in enumerate(MALFORMED):
        request = _changed(requests.raw(), path, value)
        _refused_here(what, request, expect)
        files.append(Path(request_file(tmp_path, request, f"malformed-{index}.json")))
    emulator.admin.reset_calls()
    limit = asyncio.Semaphore(CLI_AT_ONCE)
    handles = await asyncio.gather(
        *(_bounded(limit, _start(client, task_queue, runs, str(i), f)) for i, f in enumerate(files))
    )
    outcomes = await asyncio.gather(
        *(
            _bounded(limit, _fails_at_once(client, handle, case[3]))
            for handle, case in zip(handles, MALFORMED, strict=True)
        ),
        return_exceptions=True,
    )
    failed = [(case[0], out) for case, out in zip(MALFORMED, outcomes, strict=True) if out]
    assert not failed, failed
    assert emulator.admin.calls()["total"] == 0


# Malformed requests at the edges: JSON text Python's json cannot write, durations past what
# the workflow can wait, a refusal whose full text would exceed Temporal's failure size. The
# JSON the SDK's decoder cannot read (250 levels, a lone surrogate) is decoded by the workflow
# itself (workflows/payloads.py), so it too is refused at once. MARK in a change stands for
# JSON text that Python's json cannot write: 1e400, a lone surrogate, 250 levels.
MARK = "__JSON_TEXT__"
EDGE_CASES = [
    pytest.param(
        {"task_definition": {"family": MARK}},
        "[" * 250 + "]" * 250,
        "",
        id="nested 250 deep",
    ),
    pytest.param(
        {"cluster": MARK},
        '"\\ud800"',
        "",
        id="lone surrogate",
    ),
    pytest.param(
        {"verification": {"steps": [{}] * 30_000}},
        None,
        "steps",
        id="30,000 empty steps",
    ),
    pytest.param(
        {"stage_timeouts": {"rollback": 1e300}},
        None,
        "rollback",
        id="rollback timeout 1e300 s",
    ),
    pytest.param(
        {"verification": {"timeout_seconds": MARK}},
        "1e400",
        "timeout_seconds",
        id="gate timeout 1e400 s",
    ),
]


def _merged(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{key: _merged(base.get(key), value) for key, value in change.items()}}
    return change


@pytest.mark.parametrize(("change", "text", "expect"), EDGE_CASES)
async def test_malformed_requests_at_the_edges_fail_at_once(
    change, text, expect, client, worker, task_queue, requests, emulator, tmp_path, runs
):
    body = json.dumps(_merged(requests.raw(), change))
    path = tmp_path / "request.json"
    path.write_text(body.replace(f'"{MARK}"', text) if text else body)
    emulator.admin.reset_calls()
    handle = await _start(client, task_queue, runs, "not-yet", path)
    await _fails_at_once(client, handle, expect)
    assert emulator.admin.calls()["total"] == 0


# --- Decisions ------------------------------------------------------------------------------

APPROVERS = ["alice", "bob"]
NOT_AN_APPROVER = "may not decide this deployment"
INVALID = "invalid decision"
# (the payload, what its refusal says, `by` as its refused attempt records it). An odd `by` is
# no approver's name; a payload of the wrong shape is no decision at all.
DECISIONS: list[tuple[Any, str, str | None]] = [
    *(({"by": by}, NOT_AN_APPROVER, by) for by in ["alice ", "Alice", "ALICE", "аlice"]),
    *(({"by": by}, NOT_AN_APPROVER, by) for by in ["Ａｌｉｃｅ", "alice\x00", "\u202eecila"]),
    *(({"by": by}, NOT_AN_APPROVER, by) for by in ["alice, bob", "", "b" * 128, None]),
    ({"reason": "r" * 1000}, NOT_AN_APPROVER, None),
    # beyond the bounds: the oversized name is not kept
    ({"by": "b" * 129}, INVALID, None),
    ({"by": "b" * 10_000}, INVALID, None),
    ({"by": "alice", "reason": "r" * 1001}, INVALID, "alice"),
    # tokens that cannot be one, refused before the worker is asked
    ({"token": "x" * 16_385}, INVALID, None),
    ({}, NOT_AN_APPROVER, None),
    (None, NOT_AN_APPROVER, None),
    ({"by": 5}, INVALID, None),
    ({"by": ["alice"]}, INVALID, None),
    ({"by": {"name": "alice"}}, INVALID, None),
    ({"by": "alice", "reason": 5}, INVALID, "alice"),
    ({"by": "alice", "role": "admin"}, INVALID, "alice"),
    ({"by": "alice", "token": ""}, INVALID, "alice"),
    ("alice", INVALID, None),
    ([], INVALID, None),
    (True, INVALID, None),
]


async def _run_with_approvers(client, task_queue, requests, tmp_path, runs) -> WorkflowHandle:
    request = requests.raw(verification={"approvers": APPROVERS, "min_approvals": 2})
    handle = await _start(client, task_queue, runs, "gate", Path(request_file(tmp_path, request)))
    await wait_until(lambda: status(handle), timeout=30)
    return handle


async def _send(client: Client, handle: WorkflowHandle, how: str, index: int, text: str) -> Done:
    """`temporal workflow update execute` or `temporal workflow signal`, approve or reject by
    turns, with `text` as its JSON input."""
    name = "approve" if index % 2 == 0 else "reject"
    command = ["update", "execute"] if how == "update" else ["signal"]
    return await temporal_cli(
        client, "workflow", *command, "--workflow-id", handle.id, "--name", name, "--input", text
    )


async def _send_all(client, handle, how: str, texts: list[str]) -> list[Done]:
    limit = asyncio.Semaphore(CLI_AT_ONCE)
    return await asyncio.gather(
        *(_bounded(limit, _send(client, handle, how, i, text)) for i, text in enumerate(texts))
    )


async def _attempts(handle: WorkflowHandle, count: int) -> list[Any] | None:
    """The attempts recorded so far, once there are `count` of them."""
    attempts = (await status(handle)).attempts
    return attempts if len(attempts) >= count else None


async def test_malformed_decisions_are_refused_as_updates_and_recorded_as_signals(
    client, worker, task_queue, requests, tmp_path, runs
):
    assert len(DECISIONS) >= 10
    handle = await _run_with_approvers(client, task_queue, requests, tmp_path, runs)
    texts = [json.dumps(payload) for payload, _, _ in DECISIONS]

    updates = await _send_all(client, handle, "update", texts)
    for (payload, says, _), done in zip(DECISIONS, updates, strict=True):
        assert done.code != 0 and says in done.err, (payload, done.out, done.err)
    assert (await status(handle)).attempts == [], "a refused Update leaves no trace"

    signals = await _send_all(client, handle, "signal", texts)
    assert all(done.code == 0 for done in signals), [done.err for done in signals]
    attempts = await wait_until(lambda: _attempts(handle, len(DECISIONS)), timeout=30, every=0.1)
    assert all(a.via == "signal" and not a.accepted for a in attempts)
    recorded = sorted((repr(a.by), INVALID in (a.refusal or "")) for a in attempts)
    sent = sorted((repr(by), says == INVALID) for _, says, by in DECISIONS)
    assert recorded == sent
    assert all(
        NOT_AN_APPROVER in (a.refusal or "") or INVALID in (a.refusal or "") for a in attempts
    )
    final = await status(handle)
    assert final.decision is None and final.approvals == []


async def test_a_decision_nested_250_deep_is_recorded_and_says_why(
    client, worker, task_queue, requests, tmp_path, runs
):
    handle = await _run_with_approvers(client, task_queue, requests, tmp_path, runs)
    deep = '{"by": ' + "[" * 250 + "]" * 250 + "}"
    (update,) = await _send_all(client, handle, "update", [deep])
    assert update.code != 0 and INVALID in update.err, update.err
    # Signals are handled in the order they arrive: once the second is recorded, so is the first.
    await _send_all(client, handle, "signal", [deep])
    await _send_all(client, handle, "signal", [json.dumps({"by": "mallory"})])
    attempts = await wait_until(lambda: _attempts(handle, 1), timeout=30, every=0.1)
    assert [a.by for a in attempts] == [None, "mallory"]
