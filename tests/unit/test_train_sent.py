"""What a release train records of the messages it sends (ecs_canary.train_sent): the digest
a deployment computes from the signal it received, after the project's data converter carried
it, is the one the train recorded; another run, another decision or another hold is not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from ecs_canary.hold import TrainHold
from ecs_canary.models import Paused
from ecs_canary.strict import StrictModel
from ecs_canary.temporal import DATA_CONVERTER
from ecs_canary.train import TrainDecision
from ecs_canary.train_sent import decision_digest, hold_digest

TRAIN = "ecs-canary-train/payments"
APPROVAL = TrainDecision(
    train=TRAIN, wave="one", action="approve", by="alice", reason=None, approvals=["alice"]
)
PAUSED = Paused(by="alice", reason="incident", at=datetime(2026, 12, 6, 17, 0, 1, 5, tzinfo=UTC))

Message = TypeVar("Message", bound=StrictModel)


async def _received(message: Message) -> Message:
    """`message` as a deployment reads it from its signal."""
    payloads = await DATA_CONVERTER.encode([message])
    [decoded] = await DATA_CONVERTER.decode(payloads, [type(message)])
    assert isinstance(decoded, type(message))
    return decoded


async def test_a_decision_matches_only_as_sent_and_only_for_its_run():
    recorded = decision_digest(APPROVAL, "run-1")
    assert decision_digest(await _received(APPROVAL), "run-1") == recorded
    assert decision_digest(APPROVAL, "run-2") != recorded
    forged = APPROVAL.model_copy(update={"by": "mallory"})
    assert decision_digest(forged, "run-1") != recorded


async def test_a_hold_matches_only_the_trains_current_one():
    pause = TrainHold(train=TRAIN, paused=PAUSED)
    resume = TrainHold(train=TRAIN, paused=None)
    assert hold_digest(await _received(pause)) == hold_digest(pause)
    assert hold_digest(resume) != hold_digest(pause)
    later = PAUSED.model_copy(update={"at": datetime(2026, 12, 6, 18, 0, tzinfo=UTC)})
    assert hold_digest(TrainHold(train=TRAIN, paused=later)) != hold_digest(pause)
