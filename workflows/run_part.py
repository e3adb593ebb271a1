"""One run's context, and the parts of the run built on it.

Every part of a run (the ECS steps, the listener rule, the auto scaling hold, the baseline,
the verification steps, the canary analysis, the notifications, the decisions, the cleanup)
needs the same few things: the request, the run's state it records into, the gate, the way
activities are called, the fields every log line carries and the stage the run is in.
`RunContext` holds them once; a part takes the context. What `status` and the Web UI show
is owned by the state: a part records into it and holds no list of its own that the state
shares.

The Web UI details follow the state by themselves (`RunContext.keep_details_current`): a part
changes the state and never redraws anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from ecs_canary import search_attributes as sa
    from ecs_canary.gate import Gate
    from ecs_canary.models import DeploymentRequest, Stage
    from workflows.calls import Calls
    from workflows.hold import Hold
    from workflows.metrics import stage_changing
    from workflows.presentation import current_details, log_context
    from workflows.state import DeploymentState


class Location(TypedDict):
    """Where a call goes and for which stage: the fields the inputs of every call around an
    ECS service share (`ecs_canary.models.ServiceLocation`)."""

    region: str | None
    cluster: str
    service: str
    stage: Stage


@dataclass(frozen=True)
class RunContext:
    """What every part of one run shares."""

    request: DeploymentRequest
    state: DeploymentState
    gate: Gate
    calls: Calls

    @property
    def hold(self) -> Hold:
        """Where a paused (or frozen) run waits, and its timers that stop while it is paused."""
        return Hold(self.state.hold)

    def location(self, service: str | None = None, stage: Stage | None = None) -> Location:
        """The main service in the running stage, unless told another service or stage."""
        request = self.request
        return Location(
            region=request.region,
            cluster=request.cluster,
            service=service if service is not None else request.service_name,
            stage=stage if stage is not None else self.state.stage,
        )

    def enter(self, stage: Stage, *also: SearchAttributeUpdate) -> None:
        """Start `stage`: its timing, the run's search attributes (with `also`, unless the
        namespace lacks them), a log line and the metrics recorded at a stage change."""
        stage_changing(self.state, self.gate, stage)
        self.state.enter(stage, workflow.now())
        if self.state.search_attributes_registered:
            workflow.upsert_search_attributes([*also, sa.DEPLOYMENT_STAGE.value_set(stage.value)])
        workflow.logger.info(f"Stage {stage.value}", extra=self.log_context())

    def log_context(self) -> dict[str, Any]:
        """The fields on every line the run logs."""
        return log_context(self.request, self.state, workflow.info().workflow_id)

    def details(self) -> str:
        """The Web UI's current details, as the state and the gate are now."""
        info = workflow.info()
        return current_details(
            self.request, self.state, self.gate, info.workflow_id, workflow.now(), info.run_id
        )

    async def keep_details_current(self) -> None:
        """Redraw the Web UI details whenever they would read differently: run beside the run
        for its whole life. The condition is checked at the end of every workflow activation,
        after every handler and every step has run, so whatever changed the state is shown
        before the activation completes. Drawing details takes no command: the history is the
        same with or without it."""
        while True:
            workflow.set_current_details(self.details())
            await workflow.wait_condition(self._details_changed)

    def _details_changed(self) -> bool:
        return self.details() != workflow.get_current_details()


class RunPart:
    """A part of the run: it reads the request and records into the state of its context."""

    def __init__(self, run: RunContext) -> None:
        self._run = run
        self._request = run.request
        self._state = run.state
