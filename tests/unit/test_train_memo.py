"""A worker's checks of one train's memo share a describe, and never one sent before the check
was asked for (activities.train_memo)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from activities import train_memo


class _Trains:
    """Answers describes the way the client does, counting them and what each one saw."""

    def __init__(self, missing: bool = False) -> None:
        self.sent: list[str] = []
        self.memo_version = 0
        self.missing = missing

    def get_workflow_handle(self, workflow_id: str) -> Any:
        trains = self

        class Handle:
            async def describe(self) -> Any:
                trains.sent.append(workflow_id)
                if trains.missing:
                    raise RPCError("not found", RPCStatusCode.NOT_FOUND, b"")
                return (workflow_id, trains.memo_version)

        return Handle()


async def test_checks_asked_together_share_one_describe() -> None:
    trains = _Trains()
    answers = await asyncio.gather(
        *(train_memo.describe_train(trains, "ecs-canary-train/a") for _ in range(50)),  # type: ignore[arg-type]
        train_memo.describe_train(trains, "ecs-canary-train/b"),  # type: ignore[arg-type]
    )
    assert sorted(trains.sent) == ["ecs-canary-train/a", "ecs-canary-train/b"]
    assert answers[:50] == [("ecs-canary-train/a", 0)] * 50


async def test_a_check_asked_after_the_describe_left_gets_a_describe_of_its_own() -> None:
    trains = _Trains()
    first = asyncio.ensure_future(train_memo.describe_train(trains, "t"))  # type: ignore[arg-type]
    while not trains.sent:  # the first describe has been sent
        await asyncio.sleep(0.01)
    trains.memo_version = 1  # the train wrote its memo, then signalled the next check
    later = await train_memo.describe_train(trains, "t")  # type: ignore[arg-type]
    assert await first == ("t", 0)
    assert later == ("t", 1)
    assert trains.sent == ["t", "t"]


async def test_a_train_that_does_not_exist_is_none_for_every_check() -> None:
    trains = _Trains(missing=True)
    answers = await asyncio.gather(
        *(train_memo.describe_train(trains, "gone") for _ in range(3))  # type: ignore[arg-type]
    )
    assert answers == [None, None, None]
    assert trains.sent == ["gone"]


async def test_a_cancelled_check_leaves_the_describe_to_the_others() -> None:
    trains = _Trains()
    cancelled = asyncio.ensure_future(train_memo.describe_train(trains, "t"))  # type: ignore[arg-type]
    kept = asyncio.ensure_future(train_memo.describe_train(trains, "t"))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await kept == ("t", 0)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
