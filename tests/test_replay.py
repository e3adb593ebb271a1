"""Determinism: a recorded happy-path history must replay on today's workflow code, and a
replay must not write the workflow's log lines a second time."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.canary import EcsCanaryDeployment

HISTORY = Path(__file__).parent / "histories" / "happy_path.json"


def _history() -> WorkflowHistory:
    return WorkflowHistory.from_json("ecs-canary/ecs-canary/myapp", HISTORY.read_text())


async def test_the_recorded_happy_path_replays():
    replayer = Replayer(workflows=[EcsCanaryDeployment], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(_history())
    assert result.replay_failure is None
    events = json.loads(HISTORY.read_text())["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"


async def test_a_replay_logs_nothing_again(logs):
    replayer = Replayer(workflows=[EcsCanaryDeployment], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(_history())
    workflow_lines = [
        line for line in logs.lines() if line.startswith(("Stage ", "Deployment Successful."))
    ]
    assert workflow_lines == []
