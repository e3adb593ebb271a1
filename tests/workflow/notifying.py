"""A workflow that only notifies, for testing `workflows.notifications.Notifier` on the
time-skipping server before (and apart from) the deployment workflow; in a module of its own,
since the sandbox re-imports a workflow's module for every run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import Gate
    from ecs_canary.models import DeploymentRequest
    from tests.helpers.statuses import deployment_status
    from workflows.calls import Calls
    from workflows.notifications import Notifier
    from workflows.run_part import RunContext
    from workflows.state import DeploymentState


@workflow.defn(name="NotifyingWorkflow")
class NotifyingWorkflow:
    """Sends `events` one after another (a repeated one does nothing) for the notifications of
    `request`, then waits for delivery at most `final_wait_seconds`; returns the delivery
    states as `status` shows them."""

    def __init__(self) -> None:
        self._state = DeploymentState()

    @workflow.query(name="notifications")
    def notifications(self) -> list[dict[str, Any]]:
        return [state.model_dump(mode="json") for state in self._state.notifications]

    @workflow.run
    async def run(self, script: dict[str, Any]) -> list[dict[str, Any]]:
        request = DeploymentRequest.model_validate(script["request"])
        self._notifier = Notifier(RunContext(request, self._state, Gate(), Calls(request)))
        status = deployment_status(gate_deadline=workflow.now())
        for event in script["events"]:
            self._notifier.send(event, status)
        await self._notifier.finish(timedelta(seconds=script["final_wait_seconds"]))
        return self.notifications()
