"""The models the workflow, its activities, the CLI and the tests share, from one import path.

They live by concern in three modules; this one gathers them so that `ecs_canary.models`
stays the one place to import them from:
- `ecs_canary.request`: the deployment request and its settings;
- `ecs_canary.status`: what the workflow reports (stage, outcome, decisions, status, result);
- `ecs_canary.activity_io`: the inputs and outputs of the workflow's activities.
"""

from __future__ import annotations

from ecs_canary.activity_io import (
    AlarmFiring,
    CreateServiceInput,
    DecisionVerdict,
    DeleteServiceInput,
    DeleteServiceResult,
    DescribeServicesInput,
    DescribeTaskDefinitionInput,
    RegisteredTaskDefinition,
    RegisterTaskDefinitionInput,
    ServiceChange,
    ServiceLocation,
    ServiceSnapshot,
    ServiceSnapshots,
    StartChecks,
    SteadyState,
    TaskDefinitionState,
    UpdateServiceInput,
    VerifyDecisionInput,
    WaitInactiveInput,
    WaitInput,
    WaitProgress,
    WaitSteadyInput,
    WatchAlarmsInput,
)
from ecs_canary.request import (
    MAX_ALARMS,
    MAX_SERVICE_NAME_LENGTH,
    MAX_STEPS,
    CanarySettings,
    DeploymentRequest,
    RollingSettings,
    StageTimeouts,
    VerificationSettings,
)
from ecs_canary.status import (
    MAX_TOKEN_LENGTH,
    Decision,
    DecisionAction,
    DecisionAttempt,
    DecisionInput,
    DecisionSource,
    DeploymentResult,
    DeploymentStatus,
    Outcome,
    Stage,
    StageTiming,
)

__all__ = [
    "AlarmFiring",
    "CanarySettings",
    "CreateServiceInput",
    "Decision",
    "DecisionAction",
    "DecisionAttempt",
    "DecisionInput",
    "DecisionSource",
    "DecisionVerdict",
    "DeleteServiceInput",
    "DeleteServiceResult",
    "DeploymentRequest",
    "DeploymentResult",
    "DeploymentStatus",
    "DescribeServicesInput",
    "DescribeTaskDefinitionInput",
    "MAX_ALARMS",
    "MAX_SERVICE_NAME_LENGTH",
    "MAX_STEPS",
    "MAX_TOKEN_LENGTH",
    "Outcome",
    "RegisterTaskDefinitionInput",
    "RegisteredTaskDefinition",
    "RollingSettings",
    "ServiceChange",
    "ServiceLocation",
    "ServiceSnapshot",
    "ServiceSnapshots",
    "Stage",
    "StageTimeouts",
    "StageTiming",
    "StartChecks",
    "SteadyState",
    "TaskDefinitionState",
    "UpdateServiceInput",
    "VerificationSettings",
    "VerifyDecisionInput",
    "WaitInactiveInput",
    "WaitInput",
    "WaitProgress",
    "WaitSteadyInput",
    "WatchAlarmsInput",
]
