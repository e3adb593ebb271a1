"""What a part of the run that changes AWS outside ECS's services needs (the listener rule of
a weighted canary, the main service's auto scaling): the request, the way calls are made, the
run's state it records into, and how to redraw the Web UI details after a change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.models import DeploymentRequest
    from workflows.ecs_calls import EcsCalls
    from workflows.state import DeploymentState


class RunPart:
    def __init__(
        self,
        request: DeploymentRequest,
        calls: EcsCalls,
        state: DeploymentState,
        show: Callable[[], None],
    ) -> None:
        """`show` redraws the Web UI details once a change is made."""
        self._request = request
        self._calls = calls
        self._state = state
        self._show = show

    def _location(self) -> dict[str, Any]:
        """Where a call of this part goes and for which stage: the fields its inputs share."""
        request = self._request
        return {
            "region": request.region,
            "cluster": request.cluster,
            "service": request.service_name,
            "stage": self._state.stage,
        }
