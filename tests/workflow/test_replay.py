"""Determinism: every recorded history (one per version of the workflow's command sequence)
must replay on today's code, so runs in flight survive an upgrade; and a replay must not
write the workflow's log lines a second time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from ecs_canary import aws_shapes
from ecs_canary.names import workflow_id_for
from tests.helpers import CLUSTER, ROOT, replayer

HISTORIES = sorted((ROOT / "tests" / "histories").glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(workflow_id_for(CLUSTER, "myapp"), path.read_text())


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_each_recorded_history_replays(path):
    result = await replayer().replay_workflow(_history(path))
    assert result.replay_failure is None
    events = json.loads(path.read_text())["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


async def test_a_replay_logs_nothing_again(logs):
    await replayer().replay_workflow(_history(HISTORIES[-1]))
    workflow_lines = [
        line for line in logs.lines() if line.startswith(("Stage ", "Deployment Successful."))
    ]
    assert workflow_lines == []


async def test_a_sandboxed_replay_may_be_the_first_to_check_a_requests_ecs_shapes():
    """botocore's ECS model is loaded at the first check of a request (ecs_canary.aws_shapes),
    which in a sandboxed worker or replay is the workflow decoding its input, in the sandbox: it
    must load there, past the sandbox's restrictions on imports and files."""
    aws_shapes._ecs_model.cache_clear()  # as in a worker process that checked nothing yet
    result = await replayer().replay_workflow(_history(HISTORIES[-1]))
    assert result.replay_failure is None
    assert aws_shapes._ecs_model.cache_info().currsize == 1
