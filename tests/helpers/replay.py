"""Replaying finished runs on today's workflow code, as sdk-python's replayer tests do: a run
whose history no longer replays would break the runs in flight when a worker is upgraded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.worker import Replayer

from ecs_canary.temporal import DATA_CONVERTER
from workflows.canary import EcsCanaryDeployment
from workflows.train import EcsReleaseTrain

# The worker's workflows: a test's task queue holds deployments and release trains.
WORKFLOWS = (EcsCanaryDeployment, EcsReleaseTrain)


@dataclass
class ReplayTally:
    """How many histories this test session replayed, and from how many sources (tests); in
    parallel, the controller adds up its workers' (tests/conftest.py)."""

    histories: int = 0
    sources: int = 0

    def add(self, histories: int = 0, sources: int = 0) -> None:
        self.histories += histories
        self.sources += sources


TALLY = ReplayTally()


def replayer(
    workflows: Sequence[type] = WORKFLOWS,
    data_converter: DataConverter = DATA_CONVERTER,
    runtime: Runtime | None = None,
) -> Replayer:
    """A Replayer as the worker runs the workflow: today's code, the pydantic converter (with
    the payload codec, for histories a worker wrote encrypted). It replays in Temporal's
    sandbox, which the worker leaves off for speed (worker.workflow_runner): every finished run
    the tests replay is also checked for what the sandbox forbids. `runtime`: the one whose
    metric meter the replayed workflow code gets (default: the process's)."""
    return Replayer(workflows=list(workflows), data_converter=data_converter, runtime=runtime)


async def replay_histories(
    histories: AsyncIterator[WorkflowHistory] | Iterable[WorkflowHistory],
    workflows: Sequence[type] = WORKFLOWS,
    data_converter: DataConverter = DATA_CONVERTER,
) -> int:
    """Replay every history on `workflows` (today's workflow by default) and fail, naming each
    run, if any does not replay deterministically. Returns how many were replayed."""
    replayed: list[str] = []

    async def counted() -> AsyncIterator[WorkflowHistory]:
        async for history in _each(histories):
            replayed.append(history.workflow_id)
            yield history

    results = await replayer(workflows, data_converter).replay_workflows(
        counted(), raise_on_replay_failure=False
    )
    failures = {run_id: repr(err) for run_id, err in results.replay_failures.items()}
    assert not failures, f"finished runs that do not replay on this code: {failures}"
    TALLY.add(histories=len(replayed), sources=1)
    return len(replayed)


async def _each(
    histories: AsyncIterator[WorkflowHistory] | Iterable[WorkflowHistory],
) -> AsyncIterator[WorkflowHistory]:
    if isinstance(histories, AsyncIterator):
        async for history in histories:
            yield history
    else:
        for history in histories:
            yield history
