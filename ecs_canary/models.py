"""The deployment request, its status and result, and the activity inputs and outputs.

Every model rejects unknown fields, so a typo in a request fails loudly instead of being ignored.
The two AWS-shaped parts of the request (`task_definition`, `service_definition`) are checked
against botocore's own ECS service model (`ecs_canary.aws_shapes`); verification steps are
defined in `ecs_canary.steps`.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ecs_canary.analysis import AnalysisSettings, AnalysisStatus
from ecs_canary.aws_shapes import check_service_definition, check_task_definition
from ecs_canary.baseline import BaselineState, analysis_request_error, baseline_service_name
from ecs_canary.names import workflow_id_for
from ecs_canary.notifications import MAX_NOTIFICATIONS, Notification, NotificationState
from ecs_canary.policy import PlatformPolicy
from ecs_canary.scaling import ScalableTarget, ScalingHoldState
from ecs_canary.steps import StepState, VerificationStep, check_unique_names
from ecs_canary.strict import MAX_SECONDS, StrictModel
from ecs_canary.targets import TargetCount
from ecs_canary.traffic import TrafficSettings, TrafficState

_SERVICE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_SERVICE_NAME_LENGTH = 255
# A cluster's name (ECS: up to 255 letters, digits, hyphens, underscores) or its ARN.
_CLUSTER = r"^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster/)?[A-Za-z0-9_-]{1,255}$"
# An AWS region code (us-east-1, us-gov-west-1, cn-north-1): anything else would reach botocore,
# whose InvalidRegionError the ECS calls would retry until the stage timed out.
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$"
# Steps run one after another inside one bake; DescribeAlarms takes at most 100 names.
MAX_STEPS = 50
MAX_ALARMS = 100


class CanarySettings(StrictModel):
    desired_count: int = Field(1, ge=1)
    suffix: str = Field("Canary", min_length=1, pattern=_SERVICE_NAME.pattern)
    # A traffic-weighted canary (see ecs_canary.traffic); without it the canary joins the main
    # service's target groups and gets its task count's share.
    traffic: TrafficSettings | None = None


class VerificationSettings(StrictModel):
    timeout_seconds: float = Field(3600, gt=0, le=MAX_SECONDS)
    on_timeout: Literal["reject", "approve"] = "reject"
    bake_seconds: float = Field(0, ge=0, le=MAX_SECONDS)
    alarms: list[str] = Field(default_factory=list, max_length=MAX_ALARMS)
    require_approval: bool = True
    approvers: list[str] = Field(default_factory=list)
    min_approvals: int = Field(1, ge=1)
    # Checks run in order once the canary is steady, beside the bake; see ecs_canary.steps.
    steps: list[VerificationStep] = Field(default_factory=list, max_length=MAX_STEPS)
    # "reject": the first failed step rejects the canary; "gate": a person decides anyway.
    on_step_failure: Literal["reject", "gate"] = "reject"
    # Every decision must carry a token signed by a key the worker trusts (see
    # docs/signed-decisions.md); a worker's policy can require it for every run as well.
    require_signed_decisions: bool = False
    # Canary analysis: a baseline of the old version beside the canary and a statistical judge
    # (see ecs_canary.analysis).
    analysis: AnalysisSettings | None = None

    @model_validator(mode="after")
    def _enough_approvers(self) -> VerificationSettings:
        if self.approvers and self.min_approvals > len(set(self.approvers)):
            raise ValueError(
                f"min_approvals is {self.min_approvals} but only "
                f"{len(set(self.approvers))} distinct approvers are listed"
            )
        check_unique_names(self.steps)
        return self


class RollingSettings(StrictModel):
    same_as_running_instances: bool = False


class StageTimeouts(StrictModel):
    """Upper bounds, in seconds, for each stage's waits (sized for real AWS)."""

    canary_deploy: float = Field(900, gt=0, le=MAX_SECONDS)
    canary_delete: float = Field(600, gt=0, le=MAX_SECONDS)
    rolling_deploy: float = Field(1800, gt=0, le=MAX_SECONDS)
    rollback: float = Field(1800, gt=0, le=MAX_SECONDS)


class DeploymentRequest(StrictModel):
    cluster: str = Field(pattern=_CLUSTER)
    service_name: str = Field(min_length=1)
    region: str | None = Field(None, pattern=_REGION)
    task_definition: dict[str, Any]
    service_definition: dict[str, Any]
    canary: CanarySettings = Field(default_factory=CanarySettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    rolling: RollingSettings = Field(default_factory=RollingSettings)
    # Harness polls every 10 s; ECS throttles DescribeServices per account and region.
    poll_interval_seconds: float = Field(10, gt=0, le=MAX_SECONDS)
    stage_timeouts: StageTimeouts = Field(default_factory=StageTimeouts)
    # Tasks of this run's deployment that may stop before the wait fails (ECS's circuit
    # breaker waits for at least 3).
    max_failed_tasks: int = Field(2, ge=1)
    # Webhooks told when the gate opens, is decided, and the run ends; see ecs_canary.notifications.
    notifications: list[Notification] = Field(default_factory=list, max_length=MAX_NOTIFICATIONS)

    @field_validator("task_definition")
    @classmethod
    def _valid_task_definition(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_task_definition(value)

    @field_validator("service_definition")
    @classmethod
    def _valid_service_definition(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_service_definition(value)

    @model_validator(mode="after")
    def _valid_service_names(self) -> DeploymentRequest:
        names = (self.service_name, self.canary_service_name, self.baseline_service_name)
        for name in filter(None, names):
            # Quoted only up to a readable length: the message travels in the run's failure.
            shown = repr(name) if len(name) <= 80 else f"{name[:60]!r}... ({len(name)} characters)"
            if not _SERVICE_NAME.match(name):
                raise ValueError(
                    f"service name {shown} may contain only letters, digits, hyphens "
                    "and underscores"
                )
            if len(name) > MAX_SERVICE_NAME_LENGTH:
                raise ValueError(
                    f"service name {shown} is longer than {MAX_SERVICE_NAME_LENGTH} characters"
                )
        return self

    @model_validator(mode="after")
    def _valid_analysis(self) -> DeploymentRequest:
        analysis = self.verification.analysis
        if analysis is not None:
            error = analysis_request_error(analysis, self.canary.traffic, self.canary.suffix)
            if error is not None:
                raise ValueError(error)
        return self

    @property
    def canary_service_name(self) -> str:
        return f"{self.service_name}{self.canary.suffix}"

    @property
    def baseline_service_name(self) -> str | None:
        """The baseline's name with canary analysis (see ecs_canary.baseline), else None."""
        if self.verification.analysis is None:
            return None
        return baseline_service_name(self.service_name)

    @property
    def desired_count(self) -> int:
        return self.service_definition["desiredCount"]

    @property
    def images(self) -> list[str]:
        return [c["image"] for c in self.task_definition["containerDefinitions"]]

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.cluster, self.service_name)


# --- What the workflow reports --------------------------------------------------------------


class Stage(StrEnum):
    CANARY_DEPLOY = "canary_deploy"
    VERIFICATION = "verification"
    CANARY_DELETE = "canary_delete"
    ROLLING_DEPLOY = "rolling_deploy"
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
DecisionSource = Literal["signal", "update", "timeout", "alarm", "bake", "step", "analysis"]


class DecisionAttempt(StrictModel):
    action: DecisionAction
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


class StageTiming(StrictModel):
    stage: Stage
    started_at: datetime
    ended_at: datetime | None = None


class DeploymentStatus(StrictModel):
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


class DeploymentResult(StrictModel):
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


# --- Activity inputs and outputs ------------------------------------------------------------


class StartChecks(StrictModel):
    """What a run asks its worker before it starts (one local activity, the first command of
    every run): the search attributes the namespace lacks, and whether the worker's policy
    requires signed decisions. Recorded in the history, so a replay never asks again."""

    missing_search_attributes: list[str]
    signed_decisions_required: bool = False
    # The platform's policy (ecs_canary.policy) as the run found it at its start.
    policy: PlatformPolicy | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, answer: Any) -> Any:
        """Runs recorded before the policy existed were answered with the bare list of names."""
        return {"missing_search_attributes": answer} if isinstance(answer, list) else answer


class VerifyDecisionInput(StrictModel):
    # None: an unsigned decision, for which the worker only reads its policy.
    token: str | None = None
    # The decision the token must be for: this run (workflow id and run id) and this action.
    workflow_id: str
    run_id: str = ""
    action: DecisionAction


class DecisionVerdict(StrictModel):
    """The worker's verdict on a token, recorded in the history: no refusal, and `subject` is
    the verified identity (and `jti` the token's id, if any); or why the token was refused, and
    no subject: a refused token's claims prove nothing. `policy`: the platform policy as the
    worker read it for this decision."""

    subject: str | None = None
    refusal: str | None = None
    jti: str | None = None
    policy: PlatformPolicy | None = None


class ServiceLocation(StrictModel):
    region: str | None
    cluster: str
    service: str
    stage: Stage


class DescribeServicesInput(StrictModel):
    region: str | None
    cluster: str
    services: list[str]
    stage: Stage
    # Also look up this service's scalable target (the first look at the main service).
    scalable_target_of: str | None = None


class ServiceSnapshot(StrictModel):
    """The parts of an ECS service a deployment decides on."""

    arn: str
    status: str
    task_definition: str
    desired_count: int
    running_count: int
    deployment_configuration: dict[str, Any] | None
    load_balancers: list[dict[str, Any]] = Field(default_factory=list)
    deployment_controller: str | None = None


class ServiceSnapshots(StrictModel):
    """Each asked-for service by name; None where ECS has no such service (or only INACTIVE)."""

    services: dict[str, ServiceSnapshot | None]
    scalable_target: ScalableTarget | None = None


class RegisterTaskDefinitionInput(StrictModel):
    region: str | None
    cluster: str
    service: str
    stage: Stage
    task_definition: dict[str, Any]
    run_id: str
    # An earlier attempt of this call may already have registered the revision although its
    # attempt number is 1: a local activity's attempts start over on the worker that takes
    # over from one that died.
    may_be_repeated: bool = False


class RegisteredTaskDefinition(StrictModel):
    arn: str
    family: str
    revision: int


class DescribeTaskDefinitionInput(StrictModel):
    region: str | None
    arn: str


class TaskDefinitionState(StrictModel):
    arn: str
    status: str | None


class CreateServiceInput(ServiceLocation):
    task_definition_arn: str
    service_definition: dict[str, Any]
    desired_count: int
    tags: dict[str, str]
    # Replaces the service definition's `loadBalancers` (the canary's, see ecs_canary.traffic).
    load_balancers: list[dict[str, Any]] | None = None


class UpdateServiceInput(ServiceLocation):
    task_definition_arn: str
    desired_count: int
    deployment_configuration: dict[str, Any] | None = None


class ServiceChange(StrictModel):
    arn: str
    deployment_id: str | None
    # ECS's own time for the primary deployment: the wait logs service events from here on
    # (None where ECS reported no primary deployment).
    deployment_created_at: datetime | None
    changed: bool
    # ECS's record of the deployment (the service's `currentServiceDeployment`), if it has one.
    service_deployment_arn: str | None = None


class DeleteServiceInput(ServiceLocation):
    pass


class DeleteServiceResult(StrictModel):
    deleted: bool


class WaitInput(ServiceLocation):
    poll_interval_seconds: float
    timeout_seconds: float
    # Service events before this were logged by an earlier step (or an earlier deployment).
    events_since: datetime
    # Logged once the wait succeeds, e.g. "Created Service myappCanary with Arn {arn}".
    done_message: str | None = None


class WaitSteadyInput(WaitInput):
    task_definition_arn: str
    max_failed_tasks: int
    alarms: list[str] = Field(default_factory=list)
    service_deployment_arn: str | None = None


class SteadyState(StrictModel):
    running_count: int
    desired_count: int
    deployment_id: str
    # The last ECS service events the wait logged, for the status query and the Web UI.
    recent_events: list[str] = Field(default_factory=list)
    targets: list[TargetCount] = Field(default_factory=list)


class WaitInactiveInput(WaitInput):
    pass


class WatchAlarmsInput(StrictModel):
    region: str | None
    alarms: list[str]
    poll_interval_seconds: float


class AlarmFiring(StrictModel):
    name: str
    reason: str


class WaitProgress(StrictModel):
    """Heartbeat details of a wait: what a retried attempt must not log again."""

    seen_event_ids: list[str] = Field(default_factory=list)
    last_progress: str | None = None
    last_targets_progress: str | None = None
    steady_wait_announced: bool = False
    running_count: int | None = None
    desired_count: int | None = None
    recent_events: list[str] = Field(default_factory=list)
