"""A workflow that only notifies, for testing `workflows.notifications.Notifier` on the
time-skipping server before (and apart from) the deployment workflow; in a module of its own,
since the sandbox re-imports a workflow's module for every run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.models import VerificationSettings
    from ecs_canary.notifications import Notification
    from tests.helpers.statuses import deployment_status
    from workflows.notifications import Notifier


@workflow.defn(name="NotifyingWorkflow")
class NotifyingWorkflow:
    """Sends `events` one after another (a repeated one does nothing), then waits for delivery
    at most `final_wait_seconds`; returns the delivery states as `status` would show them."""

    def __init__(self) -> None:
        self._notifier: Notifier | None = None

    @workflow.query(name="notifications")
    def notifications(self) -> list[dict[str, Any]]:
        states = self._notifier.states if self._notifier else []
        return [state.model_dump(mode="json") for state in states]

    @workflow.run
    async def run(self, script: dict[str, Any]) -> list[dict[str, Any]]:
        self._notifier = Notifier(
            [Notification.model_validate(n) for n in script["notifications"]],
            VerificationSettings(),
        )
        status = deployment_status(gate_deadline=workflow.now())
        for event in script["events"]:
            self._notifier.send(event, status)
        await self._notifier.finish(timedelta(seconds=script["final_wait_seconds"]))
        return self.notifications()
