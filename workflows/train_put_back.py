"""A release train's compensation (`on_failure: "roll_back_train"`): once the line stopped,
every service the train had rolled out is put back, newest first, one at a time, to the task
definition, desired count and deployment configuration its deployment recorded before it
touched the service, and waited until stable; a service the train created is removed. It is
the deployment's own rollback (`workflows.cleanup.Cleanup.roll_back`), run by the train for a
deployment that has already ended."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import Gate
    from ecs_canary.models import DeploymentRequest, PreviousService, ServiceSnapshot
    from workflows.calls import Calls, calls_may_repeat
    from workflows.cleanup import Cleanup
    from workflows.presentation import short_arn
    from workflows.run_part import RunContext
    from workflows.state import DeploymentState


async def put_back(request: DeploymentRequest, previous: PreviousService | None, why: str) -> str:
    """Put `request`'s service back to `previous` (None: remove it) and say what was done;
    StageFailure (`RollbackFailed`, saying where the service was left) if that fails."""
    state = DeploymentState(previous=_snapshot(previous) if previous else None)
    state.search_attributes_registered = False  # the train's run has no deployment attributes
    calls = Calls(request)
    calls.may_repeat = calls_may_repeat()
    await Cleanup(RunContext(request, state, Gate(), calls)).roll_back(why)
    if previous is None:
        return f"removed (the train had created it): {why}"
    return (
        f"put back to {short_arn(previous.task_definition)} "
        f"(desired {previous.desired_count}): {why}"
    )


def _snapshot(previous: PreviousService) -> ServiceSnapshot:
    """The recorded service, as the rollback reads it (only these three fields are used)."""
    return ServiceSnapshot(
        arn="",
        status="ACTIVE",
        task_definition=previous.task_definition,
        desired_count=previous.desired_count,
        running_count=previous.desired_count,
        deployment_configuration=previous.deployment_configuration,
    )
