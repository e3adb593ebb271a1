"""The deployment request: what a person (or `starter.py`) asks the workflow to deploy, and how.

Every model rejects unknown fields, so a typo in a request fails loudly instead of being ignored.
The two AWS-shaped parts of the request (`task_definition`, `service_definition`) are checked
against botocore's own ECS service model (`ecs_canary.aws_shapes`); verification steps are
defined in `ecs_canary.steps`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ecs_canary.analysis import AnalysisSettings
from ecs_canary.aws_shapes import check_service_definition, check_task_definition
from ecs_canary.baseline import analysis_request_error, baseline_service_name
from ecs_canary.names import workflow_id_for
from ecs_canary.notifications import MAX_NOTIFICATIONS, Notification
from ecs_canary.steps import VerificationStep, check_unique_names
from ecs_canary.strict import MAX_SECONDS, StrictModel
from ecs_canary.traffic import TrafficSettings

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
# A CloudWatch alarm's name, as DescribeAlarms takes it.
AlarmName = Annotated[str, Field(min_length=1, max_length=255)]


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
    # The watch after the rollout (workflows.watch): once the service is steady on the new
    # version, its alarms are watched this long, and one that fires rolls the service back. A
    # rollout can look fine at 100 % and go bad ten minutes later.
    watch_seconds: float = Field(0, ge=0, le=MAX_SECONDS)
    # None: the verification alarms (`DeploymentRequest.watch_alarms`).
    watch_alarms: list[AlarmName] | None = Field(None, max_length=MAX_ALARMS)


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
    # Set by a release train (`EcsReleaseTrain`, ecs_canary.train) on each of its deployments:
    # the train's workflow id. The gate then never waits for a person: once the canary passed
    # its automatic verification it tells the train and takes the train's decision. A run
    # whose parent is not that train is refused (InvalidRequest).
    train: str | None = Field(None, min_length=1, max_length=300)

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

    @model_validator(mode="after")
    def _valid_watch(self) -> DeploymentRequest:
        """A watch needs both a time and alarms: either one alone is a request that forgot
        the other, and would watch nothing."""
        rolling = self.rolling
        if rolling.watch_seconds > 0 and not self.watch_alarms:
            raise ValueError(
                "rolling.watch_seconds is set but there are no alarms to watch: list them in "
                "rolling.watch_alarms (or verification.alarms)"
            )
        if rolling.watch_alarms and rolling.watch_seconds == 0:
            raise ValueError(
                "rolling.watch_alarms is set but rolling.watch_seconds is 0: set how long to "
                "watch them after the rollout"
            )
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
    def watch_alarms(self) -> list[str]:
        """The alarms the watch after the rollout watches: `rolling.watch_alarms`, by default
        the verification alarms."""
        if self.rolling.watch_alarms is not None:
            return self.rolling.watch_alarms
        return self.verification.alarms

    @property
    def desired_count(self) -> int:
        return self.service_definition["desiredCount"]

    @property
    def images(self) -> list[str]:
        return [c["image"] for c in self.task_definition["containerDefinitions"]]

    @property
    def workflow_id(self) -> str:
        return workflow_id_for(self.cluster, self.service_name)
