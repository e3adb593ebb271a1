"""A release train's pause, relayed to its deployments in flight.

A person pauses the train (`pause`, workflows.hold): the train starts no next wave and no next
deployment, its gate's timer stops, and each of its deployments in flight is paused as well
(`train_hold`), so nothing of the train moves until `resume`, which is relayed the same way.
Each deployment is told once per change, and one that starts while the train is paused is
told at once.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from ecs_canary.hold import TRAIN_HOLD_SIGNAL, HoldState, TrainHold
    from ecs_canary.models import Paused
    from workflows.calls import together
    from workflows.failures import failure_reason
    from workflows.train_sent import SentRecord


async def relay_holds(
    hold: HoldState, sent: SentRecord, in_flight: Callable[[], dict[str, str]]
) -> None:
    """For as long as the train runs: tell each deployment in flight (`in_flight()`: the run
    of each, by workflow id) whether the train is paused whenever that differs from what it
    was last told, once `sent` records it as the train's current hold (where a deployment
    checks it). A run of the train that continued an earlier one tells them again."""
    told: dict[str, Paused | None] = {}
    train = workflow.info().workflow_id

    def behind() -> list[str]:
        return [child for child in in_flight() if told.get(child) != hold.paused]

    while True:
        await workflow.wait_condition(lambda: bool(behind()))
        paused = hold.paused
        relayed = TrainHold(train=train, paused=paused)
        sent.hold(relayed)
        sends = []
        runs = in_flight()
        for child in behind():
            told[child] = paused
            sends.append(_tell(child, runs[child], relayed))
        await together(*sends)


async def _tell(workflow_id: str, run_id: str, hold: TrainHold) -> None:
    deployment = workflow.get_external_workflow_handle(workflow_id, run_id=run_id)
    try:
        await deployment.signal(TRAIN_HOLD_SIGNAL, hold)
    except FailureError as err:  # it closed before the signal reached it
        workflow.logger.info(f"{workflow_id} took no hold: {failure_reason(err)[1]}")
