"""What the workflow reports about a run: its stage and outcome, the decisions people (and the
gate's own rules) took, the `status` query's answer and the run's result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from ecs_canary.analysis import AnalysisStatus
from ecs_canary.baseline import BaselineState
from ecs_canary.notifications import NotificationState
from ecs_canary.scaling import ScalingHoldState
from ecs_canary.steps import StepState
from ecs_canary.strict import StrictModel
from ecs_canary.targets import TargetCount
from ecs_canary.traffic import TrafficState


class Stage(StrEnum):
    CANARY_DEPLOY = "canary_deploy"
    VERIFICATION = "verification"
    CANARY_DELETE = "canary_delete"
    ROLLING_DEPLOY = "rolling_deploy"
    # The watch after the rollout (`rolling.watch_seconds`): the service runs the new version,
    # and an alarm or a cancel still rolls it back.
    WATCH = "watch"
    ROLLBACK = "rollback"
    FINISHED = "finished"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CANCELLED = "cancelled"


# Far above any IdP's ID token (a few kB), far below what would bloat the history.
MAX_TOKEN_LENGTH = 16_384
# A name, and a sentence or a paragraph: every attempt is kept in the run's state and shown.
MAX_BY_LENGTH = 128
MAX_REASON_LENGTH = 1000


class DecisionInput(StrictModel):
    """What a person sends with `approve` or `reject`. With a `token` (a JWT, see
    docs/signed-decisions.md) the token's `sub` is who decides and `by` is ignored."""

    by: str | None = Field(None, max_length=MAX_BY_LENGTH)
    reason: str | None = Field(None, max_length=MAX_REASON_LENGTH)
    token: str | None = Field(None, min_length=1, max_length=MAX_TOKEN_LENGTH)


DecisionAction = Literal["approve", "reject"]
# What stops or lets go a run without deciding it (workflows.hold): sent like a decision, under
# the same approver and signing rules, and recorded among the attempts.
HoldAction = Literal["pause", "resume", "override_freeze"]
# "train": the release train's decision for the deployment's wave (ecs_canary.train).
DecisionSource = Literal[
    "signal", "update", "timeout", "alarm", "bake", "step", "analysis", "train"
]


class DecisionAttempt(StrictModel):
    action: DecisionAction | HoldAction
    by: str | None
    reason: str | None
    at: datetime
    via: DecisionSource
    accepted: bool
    refusal: str | None = None
    # `by` was proven by a token the worker verified (otherwise it is what the sender claimed).
    signed: bool = False


class Decision(StrictModel):
    action: DecisionAction
    by: str | None
    reason: str | None
    at: datetime
    via: DecisionSource
    approvals: list[str] = Field(default_factory=list)
    # The deciding person proved who they are with a token the worker verified.
    signed: bool = False


class Paused(StrictModel):
    """Who paused the run, why and when (`status.paused`; null while it is not paused)."""

    by: str
    reason: str | None
    at: datetime


class StageTiming(StrictModel):
    stage: Stage
    started_at: datetime
    ended_at: datetime | None = None


class PreviousService(StrictModel):
    """The main service as it was before the deployment (what a rollback puts back): a
    release train with `on_failure: "roll_back_train"` puts a rolled-out service back to it."""

    task_definition: str
    desired_count: int
    deployment_configuration: dict[str, Any] | None


class DeploymentResult(StrictModel):
    """How the run ended: its result, or the details of the error a failed run ends with."""

    outcome: Outcome
    reason: str | None
    cluster: str
    main_service: str
    canary_service: str
    task_definition_arn: str | None
    previous_task_definition_arn: str | None
    canary_deleted: bool
    decision: Decision | None
    attempts: list[DecisionAttempt]
    stages: list[StageTiming]
    verification_steps: list[StepState] = Field(default_factory=list)
    # With canary analysis: whether the baseline was deleted (or never created).
    baseline_deleted: bool | None = None
    # The main service before the deployment (None: there was none, the deployment created it).
    previous: PreviousService | None = None


class DeploymentStatus(StrictModel):
    """What the `status` query answers: where the run stands now."""

    stage: Stage
    gate_open: bool
    cluster: str
    main_service: str
    canary_service: str
    task_definition_arn: str | None
    running_count: int | None
    desired_count: int | None
    recent_events: list[str]
    decision: Decision | None
    approvals: list[str]
    # How many distinct approvals decide the gate (the request's `min_approvals`).
    min_approvals: int = 1
    attempts: list[DecisionAttempt]
    # Refused attempts older than the last 100 (`attempts` keeps those and every accepted one).
    refused_attempts_dropped: int = 0
    # When the open gate decides by itself, and when the bake ends (UTC; None when not open /
    # not baking). Instants, not countdowns: a query runs with the time of the last workflow
    # task, so the reader computes what is left.
    gate_deadline: datetime | None = None
    bake_ends_at: datetime | None = None
    # When the watch after the rollout ends (None when not watching), an instant like these.
    watch_ends_at: datetime | None = None
    stages: list[StageTiming]
    outcome: Outcome | None
    verification_steps: list[StepState] = Field(default_factory=list)
    # The run's result once it has ended. A cancelled run's result reaches clients only here:
    # Temporal's cancellation carries no details.
    result: DeploymentResult | None = None
    # Each notification sent so far and how its delivery went.
    notifications: list[NotificationState] = Field(default_factory=list)
    # Whether decisions must carry a signed token (by the request or the worker's policy);
    # None until the run's first task has asked its worker.
    signed_decisions_required: bool | None = None
    # Behind load balancers: the last wait's deployment's targets, the weighted canary's
    # listener rule, and the main service's auto scaling during the rollout.
    targets: list[TargetCount] = Field(default_factory=list)
    traffic: TrafficState | None = None
    scaling: ScalingHoldState | None = None
    analysis: AnalysisStatus | None = None
    # Canary analysis's baseline service beside the canary.
    baseline: BaselineState | None = None
    # Set while the run is paused (`pause` / `resume`); and while a freeze window holds it,
    # when the freeze ends and the window's name (windows that follow on are named with it).
    paused: Paused | None = None
    frozen_until: datetime | None = None
    frozen_window: str | None = None
