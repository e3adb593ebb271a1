"""Verification steps: the checks that run against a steady canary before the gate opens.

The request's `verification.steps` (a public contract: keep the field names), what each step
reports while it runs, and what the step activities take and give back. Four kinds, told
apart by `type`: a test suite as a one-off ECS task (`run_task`), HTTP smoke checks (`http`),
a comparison of the canary's CloudWatch metrics with the main service's (`metrics`), and a
check of the user's own as a child workflow (`workflow`).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from ecs_canary.aws_shapes import check_run_task_overrides, check_task_definition
from ecs_canary.strict import MAX_SECONDS, StrictModel, check_nesting

# Step names appear in child workflow ids and ECS startedBy tokens: keep them plain.
_STEP_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
StepKind = Literal["run_task", "http", "metrics", "workflow"]
StepPhase = Literal["pending", "running", "passed", "failed", "cancelled"]


class _Step(StrictModel):
    name: str = Field(pattern=_STEP_NAME)
    timeout_seconds: float = Field(gt=0, le=MAX_SECONDS)


class RunTaskStep(_Step):
    """A test suite as a one-off ECS task in the deployment's cluster (Harness's ECS Run Task)."""

    type: Literal["run_task"]
    # None: the canary's own task definition; else an ARN, `family:revision`, or a
    # RegisterTaskDefinition request (registered, tagged like the canary's).
    task_definition: str | dict[str, Any] | None = None
    overrides: dict[str, Any] | None = None  # RunTask's own `overrides`
    count: int = Field(1, ge=1, le=10)
    timeout_seconds: float = Field(600, gt=0, le=MAX_SECONDS)

    @field_validator("task_definition")
    @classmethod
    def _named_task_definition(cls, value: str | dict[str, Any] | None) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("task_definition must be null, an ARN, family:revision or a request")
        if isinstance(value, dict):
            check_task_definition(value)
        return value

    @field_validator("overrides")
    @classmethod
    def _valid_overrides(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_run_task_overrides(value)


class HttpStep(_Step):
    """Requests from the worker, one after another; fails past `max_failures` bad answers."""

    type: Literal["http"]
    url: str = Field(pattern=r"^https?://\S+$")
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    requests: int = Field(10, ge=1, le=10_000)
    interval_seconds: float = Field(1, ge=0, le=MAX_SECONDS)
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    expect_body_contains: str | None = None
    max_failures: int = Field(0, ge=0)
    max_latency_ms: float | None = Field(None, gt=0)
    timeout_seconds: float = Field(120, gt=0, le=MAX_SECONDS)


class MetricsStep(_Step):
    """CloudWatch GetMetricData over the last `window_seconds` for the canary (and, with
    `max_ratio_to_primary`, for the main service); `{service}` in a dimension value becomes
    the service's name."""

    type: Literal["metrics"]
    namespace: str = Field(min_length=1)
    metric_name: str = Field(min_length=1)
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str = Field("Sum", min_length=1)
    period_seconds: int = Field(60, ge=1, le=MAX_SECONDS)
    window_seconds: int = Field(300, ge=1, le=MAX_SECONDS)
    max_value: float | None = None
    max_ratio_to_primary: float | None = Field(None, gt=0)
    on_no_data: Literal["fail", "pass", "wait"] = "fail"
    timeout_seconds: float = Field(600, gt=0, le=MAX_SECONDS)

    @model_validator(mode="after")
    def _has_a_limit(self) -> MetricsStep:
        if self.max_value is None and self.max_ratio_to_primary is None:
            raise ValueError(f"step {self.name!r} needs max_value or max_ratio_to_primary")
        return self


class WorkflowStep(_Step):
    """A check of the user's own: a child workflow, in any Temporal SDK, on its own queue."""

    type: Literal["workflow"]
    workflow_type: str = Field(min_length=1)
    task_queue: str = Field(min_length=1)
    input: Any = None
    timeout_seconds: float = Field(1800, gt=0, le=MAX_SECONDS)

    @field_validator("input")
    @classmethod
    def _input_nesting(cls, value: Any) -> Any:
        return check_nesting(value)


VerificationStep = Annotated[
    RunTaskStep | HttpStep | MetricsStep | WorkflowStep, Field(discriminator="type")
]


def check_unique_names(steps: list[Any]) -> None:
    """Counted in one pass: a request may list thousands of steps, and a check that took
    seconds would stall the workflow task that validates it."""
    counts = Counter(step.name for step in steps)
    if duplicates := sorted(name for name, count in counts.items() if count > 1):
        raise ValueError(f"verification step names must be unique: {', '.join(duplicates)}")


# --- What a step reports -------------------------------------------------------------------


class StepState(StrictModel):
    name: str
    type: StepKind
    state: StepPhase = "pending"
    summary: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class StepVerdict(StrictModel):
    """What a step activity (or a user's check workflow) concludes."""

    passed: bool
    summary: str | None = None


# --- Step activity inputs ------------------------------------------------------------------


class RunTaskStepInput(StrictModel):
    region: str | None
    cluster: str
    step: RunTaskStep
    # The canary's task definition (used when the step names none) and the service definition
    # whose network configuration, launch type and capacity providers the task inherits.
    canary_task_definition_arn: str
    service_definition: dict[str, Any]
    # startedBy of the step's tasks: found again by a retry, so it never starts a second run.
    started_by: str
    # Tags for a task definition the step registers itself.
    tags: dict[str, str]
    poll_interval_seconds: float


class HttpStepInput(StrictModel):
    step: HttpStep


class MetricsStepInput(StrictModel):
    region: str | None
    step: MetricsStep
    canary_service: str
    main_service: str
    # How often `on_no_data: wait` looks again.
    poll_interval_seconds: float


class CheckWorkflowInput(StrictModel):
    """What a user's check workflow receives (its own JSON contract)."""

    cluster: str
    region: str | None
    service: str
    canary_service: str
    task_definition_arn: str
    input: Any = None
