"""A train of 1,000 continues as new with everything it carries packed (issue 25, item 7):
a continuation whose input is over Temporal's payload limit (2 MB by default) fails its
workflow task and every retry of it, and a train of 1,000 real requests carries more than
that. Packed, the input is a small part of the limit, unpacks to the same progress, and what
is not a packed continuation is refused as any bad input is."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from ecs_canary.status import PreviousService
from ecs_canary.temporal import DATA_CONVERTER
from ecs_canary.train import (
    MAX_DEPLOYMENTS,
    PAYLOAD_LIMIT_BYTES,
    PackedTrainContinued,
    RolledOut,
    TrainContinued,
    TrainDecision,
    TrainOutcome,
    TrainProgress,
    TrainRequest,
)
from workflows.train_state import TrainState

ROOT = Path(__file__).resolve().parents[2]
WAVES = (10, 90, 300, 600)
# Temporal's default payload warning: over it, the SDK warns (over PAYLOAD_LIMIT_BYTES it
# fails the command).
PAYLOAD_WARNING_BYTES = 512 * 1024


def _train_of_1000_in_its_last_wave() -> TrainContinued:
    """examples/verify-run-task.json's request (a test task, alarms, a bake) for 1,000
    services, three waves done and the fourth in flight: the progress a train carries across a
    continuation in the middle of its last wave."""
    example = json.loads((ROOT / "examples" / "verify-run-task.json").read_text())
    waves = [
        {
            "name": f"wave-{index + 1}",
            "deployments": [
                {**example, "service_name": f"svc-{index}-{i:03d}"} for i in range(size)
            ],
        }
        for index, size in enumerate(WAVES)
    ]
    request = TrainRequest.model_validate(
        {"name": "platform", "waves": waves, "approval": "none", "max_parallel": 600}
    )
    state = TrainState.planned(request)
    state.wave = len(WAVES)
    rows = [row for wave in state.waves for row in wave.deployments]
    for wave in state.waves[:-1]:
        wave.state = "succeeded"
        for row in wave.deployments:
            state.ended(row, TrainOutcome.SUCCEEDED, "the rolling deploy reached steady state")
    for row in state.waves[-1].deployments:
        row.stage = "approved"
    approval = TrainDecision(
        train="ecs-canary-train/platform", wave="wave-4", action="approve", by=None, reason=None
    )
    previous = PreviousService(
        task_definition="arn:aws:ecs:us-east-1:123456789012:task-definition/myapp-task:41",
        desired_count=3,
        deployment_configuration={"maximumPercent": 200, "minimumHealthyPercent": 100},
    )
    progress = TrainProgress(
        waves=state.waves,
        wave=state.wave,
        stop_reason=None,
        rolled_out=[RolledOut(workflow_id=row.workflow_id, previous=previous) for row in rows],
        run_ids={
            row.workflow_id: f"0190c0de-{i:04d}-7000-8000-00000000{i:04d}"
            for i, row in enumerate(rows)
        },
        told={row.workflow_id: approval for row in state.waves[-1].deployments},
        cancelled=[],
        ended=[],
        notifications=[],
        policy=None,
    )
    return TrainContinued(request=request, progress=progress)


async def test_a_train_of_1000_continues_within_temporals_payload_limit() -> None:
    carried = _train_of_1000_in_its_last_wave()
    assert sum(len(wave.deployments) for wave in carried.request.waves) == MAX_DEPLOYMENTS
    [unpacked] = await DATA_CONVERTER.encode([carried])
    packed_by = "0190c0de-0000-7000-8000-000000000000"
    [packed] = await DATA_CONVERTER.encode([PackedTrainContinued.pack(carried, packed_by)])
    assert unpacked.ByteSize() > PAYLOAD_LIMIT_BYTES  # what the train used to send
    assert packed.ByteSize() < PAYLOAD_WARNING_BYTES / 4

    [received] = await DATA_CONVERTER.decode([packed], [PackedTrainContinued])
    assert isinstance(received, PackedTrainContinued)
    assert received.unpack() == carried
    assert received.packed_by_run == packed_by


@pytest.mark.parametrize(
    "packed",
    [
        "not base64 at all!",
        base64.b64encode(b"not zlib").decode(),
        base64.b64encode(zlib.compress(b"{}")).decode(),  # no request, no progress
        base64.b64encode(zlib.compress(b"{" * 10)[:-4]).decode(),  # cut short
    ],
    ids=["not-base64", "not-zlib", "not-a-continuation", "truncated"],
)
def test_what_is_not_a_packed_continuation_is_refused_as_bad_input(packed: str) -> None:
    with pytest.raises(ValidationError):
        PackedTrainContinued.model_validate({"packed": packed, "packed_by_run": "run"}).unpack()


def test_a_client_cannot_pass_anything_else_for_one() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PackedTrainContinued.model_validate({"packed": "", "packed_by_run": "run", "request": {}})
