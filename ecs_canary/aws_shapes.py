"""The AWS-shaped parts of a request, checked against botocore's own ECS service model, so they
accept exactly what AWS accepts and fail before any ECS call when they would not."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from ecs_canary.strict import MAX_NESTING, nesting_exceeds
from ecs_canary.supported_services import controller_and_strategy, unsupported_reason

if TYPE_CHECKING:
    from botocore.model import ServiceModel
    from botocore.validate import ParamValidator


@functools.cache
def _ecs_model() -> tuple[ServiceModel, ParamValidator]:
    """botocore's own ECS service model, and its validator of an operation's parameters.

    Loaded at the first check, not at import: the starter imports this module for every command
    but checks a request only for `deploy` and `train start`, and importing botocore is most of
    its cost. Read straight from botocore's data, without a session: a session brings in
    botocore's clients, waiters and docs, which nothing here uses. A sandboxed workflow may make
    the first check (its input is validated as it is decoded): botocore is then imported outside
    the sandbox, as the models themselves are, and its data files read past the sandbox's
    restrictions (they are the same files whenever they are read)."""
    from temporalio import workflow  # not at import either: a process may never check a request

    with workflow.unsafe.imports_passed_through(), workflow.unsafe.sandbox_unrestricted():
        import botocore.loaders
        import botocore.model
        import botocore.validate

        data = botocore.loaders.Loader().load_service_model("ecs", "service-2")
        return botocore.model.ServiceModel(data, "ecs"), botocore.validate.ParamValidator()


# Set by the workflow from the request's cluster, service name and the registered revision.
_SERVICE_FIELDS_SET_BY_WORKFLOW = ("cluster", "serviceName", "taskDefinition")


def _shape_errors(params: dict[str, Any], operation: str) -> str | None:
    """What botocore finds wrong in `params` as the input of the ECS `operation`, if anything."""
    if nesting_exceeds(params):  # before botocore, whose check would recurse without end
        return f"lists and objects nest more than {MAX_NESTING} levels deep"
    model, validator = _ecs_model()
    report = validator.validate(params, model.operation_model(operation).input_shape)
    return report.generate_report() if report.has_errors() else None


def check_task_definition(value: dict[str, Any]) -> dict[str, Any]:
    """A RegisterTaskDefinition request with a family and named, imaged containers."""
    if errors := _shape_errors(value, "RegisterTaskDefinition"):
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
    if errors := _shape_errors(probe, "CreateService"):
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
    if errors := _shape_errors(probe, "RunTask"):
        raise ValueError(f"not valid RunTask overrides: {errors}")
    return value
