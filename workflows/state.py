"""Everything a deployment run knows, in one dataclass.

The run's stages write it, the `status` query and the result read it, and the Web UI details
are drawn from it: one place to look when asking "what does the workflow remember?".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ecs_canary.analysis import AnalysisStatus
from ecs_canary.baseline import BaselineState
from ecs_canary.gate import Gate
from ecs_canary.hold import HoldState
from ecs_canary.models import (
    DeploymentRequest,
    DeploymentResult,
    DeploymentStatus,
    Outcome,
    PreviousService,
    ServiceSnapshot,
    Stage,
    StageTiming,
    SteadyState,
)
from ecs_canary.notifications import NotificationState
from ecs_canary.scaling import ScalingHoldState
from ecs_canary.steps import StepState
from ecs_canary.targets import TargetCount
from ecs_canary.traffic import TrafficState


@dataclass
class DeploymentState:
    stage: Stage = Stage.CANARY_DEPLOY
    stages: list[StageTiming] = field(default_factory=list)
    task_definition_arn: str | None = None
    # The main service as it was before this deployment: the rollback target (None: there was
    # no service, and a failed first rollout removes the one it created).
    previous: ServiceSnapshot | None = None
    # Set from just before the canary's CreateService until it was seen INACTIVE: whatever ends
    # the run in between must delete it.
    canary_may_exist: bool = False
    canary_deleted: bool = False
    # Canary analysis's baseline (recorded with the main service it copies), and the same
    # flag for it: set from just before its CreateService until it was seen INACTIVE.
    baseline: BaselineState | None = None
    baseline_may_exist: bool = False
    # Set once the rolling deploy may have touched the main service, until it is rolled out: a
    # failure or a cancel in between rolls it back.
    main_service_touched: bool = False
    # While the watch after the rollout runs: when it ends (workflows.watch).
    watch_ends_at: datetime | None = None
    running_count: int | None = None
    desired_count: int | None = None
    recent_events: list[str] = field(default_factory=list)
    # The last wait's deployment's targets behind the service's load balancers.
    targets: list[TargetCount] = field(default_factory=list)
    # The weighted canary's listener rule: recorded before anything changes, and whether the
    # canary's weight may be in force (then every way out puts the recorded actions back).
    traffic: TrafficState | None = None
    # The main service's scalable target, and whether this run holds its dynamic scaling.
    scaling: ScalingHoldState | None = None
    outcome: Outcome | None = None
    search_attributes_registered: bool = True
    verification_steps: list[StepState] = field(default_factory=list)
    # `verification.analysis`'s intervals so far (None without it).
    analysis: AnalysisStatus | None = None
    final_result: DeploymentResult | None = None
    # Every notification queued so far and how its delivery went (the Notifier records here).
    notifications: list[NotificationState] = field(default_factory=list)
    # Paused by a person, or held by a freeze window (workflows.hold).
    hold: HoldState = field(default_factory=HoldState)

    def enter(self, stage: Stage, now: datetime) -> None:
        """Close the running stage's timing and start the next one's."""
        if self.stages and self.stages[-1].ended_at is None:
            self.stages[-1].ended_at = now
        self.stage = stage
        if stage != Stage.FINISHED:
            self.stages.append(StageTiming(stage=stage, started_at=now))

    def saw(self, steady: SteadyState) -> None:
        """Remember what the last wait for steady state saw, for `status` and the Web UI."""
        self.running_count, self.desired_count = steady.running_count, steady.desired_count
        self.recent_events = steady.recent_events
        self.targets = steady.targets

    @property
    def canary_gone(self) -> bool:
        """The canary was deleted by this run, or never created."""
        return self.canary_deleted or not self.canary_may_exist

    @property
    def baseline_gone(self) -> bool:
        """The baseline was deleted by this run (or by no one: it was never created)."""
        return not self.baseline_may_exist

    def status(self, request: DeploymentRequest | None, gate: Gate) -> DeploymentStatus:
        """What the `status` query answers (`request` is None for an invalid request)."""
        return DeploymentStatus(
            stage=self.stage,
            gate_open=gate.is_open,
            cluster=request.cluster if request else "",
            main_service=request.service_name if request else "",
            canary_service=request.canary_service_name if request else "",
            task_definition_arn=self.task_definition_arn,
            running_count=self.running_count,
            desired_count=self.desired_count,
            recent_events=self.recent_events,
            decision=gate.decision,
            approvals=gate.approvals,
            min_approvals=gate.min_approvals,
            attempts=gate.attempts,
            refused_attempts_dropped=gate.refused_attempts_dropped,
            gate_deadline=gate.deadline,
            bake_ends_at=gate.bake_ends_at,
            watch_ends_at=self.watch_ends_at,
            stages=self.stages,
            outcome=self.outcome,
            verification_steps=self.verification_steps,
            result=self.final_result,
            notifications=self.notifications,
            signed_decisions_required=gate.signatures_required,
            targets=self.targets,
            traffic=self.traffic,
            scaling=self.scaling,
            analysis=self.analysis,
            baseline=self.baseline,
            paused=self.hold.paused,
            frozen_until=self.hold.frozen_until,
            frozen_window=self.hold.frozen_window,
        )

    def result(
        self, request: DeploymentRequest, gate: Gate, reason: str | None
    ) -> DeploymentResult:
        """The run's result, once its outcome is set; `status` reports it from then on."""
        assert self.outcome is not None, "the outcome is set before the result is built"
        self.final_result = DeploymentResult(
            outcome=self.outcome,
            reason=reason,
            cluster=request.cluster,
            main_service=request.service_name,
            canary_service=request.canary_service_name,
            task_definition_arn=self.task_definition_arn,
            previous_task_definition_arn=self.previous.task_definition if self.previous else None,
            canary_deleted=self.canary_gone,
            decision=gate.decision,
            attempts=gate.attempts,
            stages=self.stages,
            verification_steps=self.verification_steps,
            baseline_deleted=self.baseline_gone if request.baseline_service_name else None,
            previous=PreviousService(
                task_definition=self.previous.task_definition,
                desired_count=self.previous.desired_count,
                deployment_configuration=self.previous.deployment_configuration,
            )
            if self.previous
            else None,
        )
        return self.final_result
