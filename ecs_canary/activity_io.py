"""The inputs and outputs of the activities the workflow calls: the run's start checks, a
decision's verification, and the ECS steps and waits (the calls around the service, its
listener rule and scalable target: `ecs_canary.aws_inputs`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from ecs_canary.policy import PlatformPolicy
from ecs_canary.scaling import ScalableTarget
from ecs_canary.status import DecisionAction, HoldAction, Stage
from ecs_canary.strict import StrictModel
from ecs_canary.targets import TargetCount


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
    action: DecisionAction | HoldAction
    # The runs this run continued from at its gate: the same deployment (DecisionClaims).
    earlier_run_ids: list[str] = Field(default_factory=list)


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
    # The run that created it (its `ecs-canary:run-id` tag), for a canary or a baseline.
    created_by_run: str | None = None


class ServiceSnapshots(StrictModel):
    """Each asked-for service by name; None where ECS has no such service (or only INACTIVE)."""

    services: dict[str, ServiceSnapshot | None]
    scalable_target: ScalableTarget | None = None


class RegisterTaskDefinitionInput(ServiceLocation):
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
    # An earlier attempt may have created it although this attempt's number is 1 (a lost
    # workflow task's local activity): look before creating.
    may_be_repeated: bool = False


class UpdateServiceInput(ServiceLocation):
    task_definition_arn: str
    desired_count: int
    deployment_configuration: dict[str, Any] | None = None
    # As for CreateServiceInput: look before updating.
    may_be_repeated: bool = False


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


class WaitInactiveInput(WaitInput):
    pass


class SteadyState(StrictModel):
    running_count: int
    desired_count: int
    deployment_id: str
    # The last ECS service events the wait logged, for the status query and the Web UI.
    recent_events: list[str] = Field(default_factory=list)
    targets: list[TargetCount] = Field(default_factory=list)


class AlarmsInput(StrictModel):
    region: str | None
    alarms: list[str]


class WatchAlarmsInput(AlarmsInput):
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
