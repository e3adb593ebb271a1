"""A run's coroutines closed while they wait (the worker drops the run from its cache, or a
terminated run is collected) close cleanly: the `finally` that settles side tasks awaits
nothing then (workflows.calls.settle). A coroutine that awaits while closed "ignores
GeneratorExit": Python reports it as an error, and the interpreter can crash on exit."""

from __future__ import annotations

import asyncio

from workflows.calls import settle, together


async def _closed_while_waiting(coroutine) -> None:
    """Run `coroutine` until it first waits, then close it as the garbage collector would."""
    coroutine.send(None)
    coroutine.close()  # raises RuntimeError if the coroutine awaited while being closed


def test_steps_side_by_side_close_without_awaiting():
    async def scenario() -> list[asyncio.Task]:
        await _closed_while_waiting(together(asyncio.sleep(3600), asyncio.sleep(3600)))
        return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]

    left = asyncio.run(scenario())

    assert len(left) == 2  # still running when closed, cancelled by asyncio.run afterwards


def test_a_finally_that_settles_a_side_task_closes_without_awaiting():
    async def step_with_a_side_task(side: asyncio.Future) -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await settle(side)

    async def scenario() -> bool:
        side = asyncio.ensure_future(asyncio.sleep(3600))
        await _closed_while_waiting(step_with_a_side_task(side))
        return side.done()

    assert asyncio.run(scenario()) is False


def test_settle_still_waits_for_a_cancelled_task_on_any_other_way_out():
    async def scenario() -> bool:
        side = asyncio.ensure_future(asyncio.sleep(3600))
        side.cancel()
        await settle(side)
        return side.cancelled()

    assert asyncio.run(scenario()) is True
