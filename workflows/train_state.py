"""Everything a release train run knows, in one dataclass: each deployment's row (compact: a
few strings per service, so a train of 1,000 answers `status` quickly), which wave runs, and
whether and why the line stopped. The train's parts write it; `status`, the result and the Web
UI details read it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ecs_canary.gate import Gate
from ecs_canary.hold import HoldState
from ecs_canary.models import DeploymentResult, Outcome
from ecs_canary.notifications import NotificationState
from ecs_canary.train import (
    RolledOut,
    TrainDeployment,
    TrainEnd,
    TrainOutcome,
    TrainRequest,
    TrainResult,
    TrainServiceOutcome,
    TrainStatus,
    TrainWaveStatus,
)


@dataclass
class TrainState:
    waves: list[TrainWaveStatus] = field(default_factory=list)
    # The wave running now, 1-based (0 before the first).
    wave: int = 0
    # Set once the line stopped (a deployment failed or was rejected, the gate rejected, the
    # train was cancelled): no later deployment starts.
    stop_reason: str | None = None
    outcome: TrainEnd | None = None
    final_result: TrainResult | None = None
    # The services the train rolled out, oldest first, each with what its deployment recorded
    # before it touched the service (None: it created the service): what
    # `on_failure: "roll_back_train"` puts back, newest first.
    rolled_out: list[RolledOut] = field(default_factory=list)
    # Each notification event to each receiver, and how its delivery went.
    notifications: list[NotificationState] = field(default_factory=list)
    # workflow id -> its row, for the messages from the deployments.
    _rows: dict[str, TrainDeployment] = field(default_factory=dict)
    # Paused by a person, or held by a freeze window between waves (workflows.hold).
    hold: HoldState = field(default_factory=HoldState)

    @classmethod
    def planned(cls, request: TrainRequest) -> TrainState:
        waves = [
            TrainWaveStatus(
                name=wave.name,
                deployments=[
                    TrainDeployment(
                        service=deployment.service_name,
                        cluster=deployment.cluster,
                        workflow_id=deployment.workflow_id,
                    )
                    for deployment in wave.deployments
                ],
            )
            for wave in request.waves
        ]
        return cls.resumed(waves, 0, None, [], [])

    @classmethod
    def resumed(
        cls,
        waves: list[TrainWaveStatus],
        wave: int,
        stop_reason: str | None,
        rolled_out: list[RolledOut],
        notifications: list[NotificationState],
    ) -> TrainState:
        """The state as an earlier run of the train left it (`TrainProgress`)."""
        rows = {row.workflow_id: row for wave in waves for row in wave.deployments}
        return cls(
            waves,
            wave,
            stop_reason,
            rolled_out=rolled_out,
            notifications=notifications,
            _rows=rows,
        )

    @property
    def stopped(self) -> bool:
        return self.stop_reason is not None

    def stop(self, reason: str) -> None:
        """Stop the line, for the first reason only."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def row(self, workflow_id: str) -> TrainDeployment | None:
        return self._rows.get(workflow_id)

    def succeeded(self, row: TrainDeployment, result: DeploymentResult) -> None:
        self.rolled_out.append(RolledOut(workflow_id=row.workflow_id, previous=result.previous))
        self.ended(row, TrainOutcome.SUCCEEDED, result.reason)

    def ended(self, row: TrainDeployment, outcome: TrainOutcome, reason: str | None) -> None:
        """A deployment is over; anything but success stops the line."""
        row.stage, row.outcome, row.reason = "finished", outcome, reason
        if outcome != TrainOutcome.SUCCEEDED:
            self.stop(f"{row.service} on {row.cluster}: {outcome.value}: {reason or 'no reason'}")

    def in_flight(self, wave: TrainWaveStatus) -> list[TrainDeployment]:
        """The wave's deployments started and not yet ended."""
        return [row for row in wave.deployments if row.stage in IN_FLIGHT]

    def never_started(self) -> None:
        """Every deployment not started when the train ends."""
        for wave in self.waves:
            if wave.state == "pending":
                wave.state = "not_started"
            for row in wave.deployments:
                if row.outcome is None:
                    row.stage, row.outcome = "finished", TrainOutcome.NOT_STARTED
                    row.reason = f"the line stopped: {self.stop_reason}"

    def counts(self) -> dict[str, int]:
        rows = [row for wave in self.waves for row in wave.deployments]
        counted = Counter(row.outcome.value for row in rows if row.outcome is not None)
        counted["in_flight"] = sum(
            1 for row in rows if row.outcome is None and row.stage != "not_started"
        )
        counted["pending"] = sum(1 for row in rows if row.stage == "not_started")
        return {key: counted.get(key, 0) for key in _COUNTED}

    def status(self, name: str, gate: Gate) -> TrainStatus:
        return TrainStatus(
            name=name,
            wave=self.wave,
            waves=self.waves,
            gate_open=gate.is_open,
            gate_deadline=gate.deadline,
            decision=gate.decision,
            approvals=gate.approvals,
            min_approvals=gate.min_approvals,
            attempts=gate.attempts,
            refused_attempts_dropped=gate.refused_attempts_dropped,
            signed_decisions_required=gate.signatures_required,
            counts=self.counts(),
            outcome=self.outcome,
            result=self.final_result,
            paused=self.hold.paused,
            frozen_until=self.hold.frozen_until,
            frozen_window=self.hold.frozen_window,
            notifications=self.notifications,
        )

    def result(self, name: str, outcome: TrainEnd) -> TrainResult:
        self.outcome = outcome
        self.final_result = TrainResult(
            name=name,
            outcome=outcome,
            reason=self.stop_reason,
            services=[
                TrainServiceOutcome(
                    wave=wave.name,
                    service=row.service,
                    cluster=row.cluster,
                    workflow_id=row.workflow_id,
                    outcome=row.outcome or TrainOutcome.NOT_STARTED,
                    reason=row.reason,
                )
                for wave in self.waves
                for row in wave.deployments
            ],
        )
        return self.final_result


# A deployment's stages while its run is in flight.
IN_FLIGHT = ("canary", "verified", "promoting", "approved")
_COUNTED = [*(outcome.value for outcome in TrainOutcome), "in_flight", "pending"]


def outcome_of(result: DeploymentResult) -> TrainOutcome:
    """A deployment's outcome in the train's words (a cancelled one put nothing out)."""
    if result.outcome == Outcome.CANCELLED:
        return TrainOutcome.REJECTED
    return TrainOutcome(result.outcome.value)
