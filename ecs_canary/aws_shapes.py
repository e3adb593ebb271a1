"""The AWS-shaped parts of a request, checked against botocore's own ECS service model, so they
accept exactly what AWS accepts and fail before any ECS call when they would not."""

from __future__ import annotations

from typing import Any

import botocore.loaders
import botocore.model
from botocore.validate import ParamValidator

from ecs_canary.strict import MAX_NESTING, nesting_exceeds
from ecs_canary.supported_services import controller_and_strategy, unsupported_reason

# Loaded once at import, outside the workflow sandbox (the models are passed through). Read
# straight from botocore's data, without a session: a session brings in botocore's clients,
# waiters and docs, which nothing here uses, and the starter imports this for every command.
_ECS_MODEL = botocore.model.ServiceModel(
    botocore.loaders.Loader().load_service_model("ecs", "service-2"), "ecs"
)
_REGISTER_SHAPE = _ECS_MODEL.operation_model("RegisterTaskDefinition").input_shape
_CREATE_SHAPE = _ECS_MODEL.operation_model("CreateService").input_shape
_RUN_TASK_SHAPE = _ECS_MODEL.operation_model("RunTask").input_shape
# Set by the workflow from the request's cluster, service name and the registered revision.
_SERVICE_FIELDS_SET_BY_WORKFLOW = ("cluster", "serviceName", "taskDefinition")


def _shape_errors(params: dict[str, Any], shape: Any) -> str | None:
    if nesting_exceeds(params):  # before botocore, whose check would recurse without end
        return f"lists and objects nest more than {MAX_NESTING} levels deep"
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else None


def check_task_definition(value: dict[str, Any]) -> dict[str, Any]:
    """A RegisterTaskDefinition request with a family and named, imaged containers."""
    if errors := _shape_errors(value, _REGISTER_SHAPE):
        raise ValueError(f"not a valid RegisterTaskDefinition request: {errors}")
    if not value["family"].strip():
        raise ValueError("family must not be empty")
    containers = value["containerDefinitions"]
    if not containers:
        raise ValueError("containerDefinitions must list at least one container")
    for index, container in enumerate(containers):
        for key in ("name", "image"):
            if not str(container.get(key) or "").strip():
                raise ValueError(f"containerDefinitions[{index}] has no {key}")
    return value


def check_service_definition(value: dict[str, Any]) -> dict[str, Any]:
    """A CreateService request without what the deployment sets, with a full desired count."""
    if set_here := [key for key in _SERVICE_FIELDS_SET_BY_WORKFLOW if key in value]:
        raise ValueError(f"{', '.join(set_here)} must not be set here: the deployment sets them")
    probe = {**value, "serviceName": "probe", "taskDefinition": "probe:1"}
    if errors := _shape_errors(probe, _CREATE_SHAPE):
        raise ValueError(f"not a valid CreateService request: {errors}")
    if "desiredCount" not in value:
        raise ValueError("desiredCount is required (the rolling deploy's full count)")
    if isinstance(value["desiredCount"], bool):  # botocore takes a bool for an integer
        raise ValueError("desiredCount must be an integer, not true or false")
    if value["desiredCount"] < 1:
        raise ValueError("desiredCount must be at least 1")
    if reason := unsupported_reason(*controller_and_strategy(value), "the service_definition"):
        raise ValueError(reason)
    return value


def check_run_task_overrides(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """RunTask's `overrides` (TaskOverride) as AWS accepts them, refused before the canary
    starts rather than when the step runs."""
    if value is None:
        return None
    probe = {"taskDefinition": "probe:1", "overrides": value}
    if errors := _shape_errors(probe, _RUN_TASK_SHAPE):
        raise ValueError(f"not valid RunTask overrides: {errors}")
    return value
