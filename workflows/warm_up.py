"""The `warm_up` Update, which every run refuses: a worker that starts sends it to each open
run of its task queue (ecs_canary.warm_up) so that the run is replayed once, in the background,
and then held in that worker's cache with the server sending its tasks and queries there.

Why an Update the workflow refuses: the server hands an Update to a worker in a workflow task
it writes to the history only if the Update is accepted. A validator's refusal leaves no event
at all, yet the worker that validated it has replayed the run and holds it: every `status`
after that is answered from the worker's cache in milliseconds. Completing that task usually
makes the run sticky on that worker too; in about one start in eight of the warm-up's e2e test
the server sent the queries elsewhere (README, "A worker's warm-up").

Without it, a run waiting quietly at its gate runs no workflow task after a worker restart,
and every `status` query hands the worker the whole history to replay (1.5 to 2.5 s for 10,000
refused signals in one run, issue 23; a flooded deployment now continues as new before its
history is that long, workflows.continue_at_gate) until something happens in the run.

The validator refuses every call the same way and reads nothing: the run's state and history
stay as they were, and the Update's handler never runs. Its argument is taken raw, as every
message's is (workflows.payloads): whatever a caller sends, nothing is decoded."""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from ecs_canary.names import WARM_UP_REFUSED, WARM_UP_UPDATE
    from workflows.payloads import NO_ARGUMENT

WARM_UP_REFUSAL = (
    "warm_up only makes a worker load this run into its cache; the run refuses it and nothing "
    "changes"
)


class WarmUpMessage:
    """The `warm_up` Update; a workflow class inherits it."""

    @workflow.update(
        name=WARM_UP_UPDATE,
        description="Sent by a worker when it starts: loads the run into that worker's cache, "
        "so that `status` answers at once. Always refused; changes nothing and leaves no event.",
    )
    async def warm_up(self, _: RawValue = NO_ARGUMENT) -> None:
        """Never runs: the validator refuses every call."""

    @warm_up.validator
    def _refuse_warm_up(self, _: RawValue = NO_ARGUMENT) -> None:
        raise ApplicationError(WARM_UP_REFUSAL, type=WARM_UP_REFUSED, non_retryable=True)
