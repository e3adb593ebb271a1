"""The deployment request's own checks: what a request may say, and what fails it at once."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_canary.models import (
    MAX_SERVICE_NAME_LENGTH,
    DeploymentRequest,
    VerificationSettings,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _example(name: str = "request.json") -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def _changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    request = copy.deepcopy(_example())
    change(request)
    return request


def _error(request: dict[str, Any]) -> str:
    """The one validation error the request fails with."""
    with pytest.raises(ValidationError) as invalid:
        DeploymentRequest.model_validate(request)
    (error,) = invalid.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def test_the_example_request_is_valid():
    request = DeploymentRequest.model_validate(_example())
    assert request.canary_service_name == "myappCanary"
    assert request.desired_count == 3
    assert request.images == ["nginx:1.27"]
    assert request.workflow_id == "ecs-canary/ecs-canary/myapp"
    assert request.canary.desired_count == 1
    assert request.verification.require_approval


def test_the_first_deployment_example_is_valid_with_defaults():
    request = DeploymentRequest.model_validate(_example("first-deployment.json"))
    assert (request.service_name, request.canary_service_name) == ("billing", "billingCanary")
    assert request.desired_count == 2
    assert request.max_failed_tasks == 2
    assert request.verification.min_approvals == 1 and request.verification.approvers == []


def test_a_request_survives_a_json_round_trip():
    request = DeploymentRequest.model_validate(_example())
    again = DeploymentRequest.model_validate(request.model_dump(mode="json"))
    assert again == request


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (lambda r: r.update(poll_interval=5), "poll_interval"),
        (lambda r: r["canary"].update(sufix="Canary"), "canary.sufix"),
        (lambda r: r["verification"].update(approver=["alice"]), "verification.approver"),
        (lambda r: r["stage_timeouts"].update(canary=60), "stage_timeouts.canary"),
    ],
)
def test_an_unknown_field_is_rejected_not_ignored(change, location):
    assert _error(_changed(change)) == f"{location}: Extra inputs are not permitted"


@pytest.mark.parametrize("name", ["my app", "myapp/v2", "myapp.prod", "ünicode"])
def test_a_service_name_with_other_characters_is_rejected(name):
    assert _error(_changed(lambda r: r.update(service_name=name))) == (
        f": Value error, service name {name!r} may contain only letters, digits, hyphens and "
        "underscores"
    )


def test_the_canary_name_must_fit_too():
    """The canary's name is the service's plus a suffix: both must be names ECS takes."""
    longest = "a" * (MAX_SERVICE_NAME_LENGTH - len("Canary"))
    assert DeploymentRequest.model_validate(_changed(lambda r: r.update(service_name=longest)))
    too_long = longest + "a"
    assert _error(_changed(lambda r: r.update(service_name=too_long))) == (
        f": Value error, service name {too_long[:60]!r}... (256 characters) is longer than "
        f"{MAX_SERVICE_NAME_LENGTH} characters"
    )
    assert _error(_changed(lambda r: r["canary"].update(suffix="-canary!"))).startswith(
        "canary.suffix: String should match pattern"
    )


def test_desired_count_is_required():
    error = _error(_changed(lambda r: r["service_definition"].pop("desiredCount")))
    assert error == (
        "service_definition: Value error, desiredCount is required (the rolling deploy's "
        "full count)"
    )


@pytest.mark.parametrize("count", [0, -1])
def test_desired_count_must_be_at_least_one(count):
    error = _error(_changed(lambda r: r["service_definition"].update(desiredCount=count)))
    assert error == "service_definition: Value error, desiredCount must be at least 1"


@pytest.mark.parametrize("key", ["cluster", "serviceName", "taskDefinition"])
def test_what_the_deployment_sets_may_not_be_in_the_service_definition(key):
    error = _error(_changed(lambda r: r["service_definition"].update({key: "x"})))
    assert error == (
        f"service_definition: Value error, {key} must not be set here: the deployment sets them"
    )


def test_the_service_definition_is_checked_against_create_service():
    error = _error(_changed(lambda r: r["service_definition"].update(desiredCnt=3)))
    assert error.startswith(
        "service_definition: Value error, not a valid CreateService request: "
        'Unknown parameter in input: "desiredCnt"'
    )
    wrong_type = _changed(lambda r: r["service_definition"].update(launchType=["FARGATE"]))
    assert "Invalid type for parameter launchType" in _error(wrong_type)


def test_the_task_definition_is_checked_against_register_task_definition():
    error = _error(_changed(lambda r: r["task_definition"].update(cpu=256)))
    assert error.startswith(
        "task_definition: Value error, not a valid RegisterTaskDefinition request: "
        "Invalid type for parameter cpu"
    )
    missing = _changed(lambda r: r["task_definition"].pop("containerDefinitions"))
    assert 'Missing required parameter in input: "containerDefinitions"' in _error(missing)


def test_a_task_definition_needs_a_family_and_containers_with_name_and_image():
    blank_family = _changed(lambda r: r["task_definition"].update(family="  "))
    assert _error(blank_family) == "task_definition: Value error, family must not be empty"
    no_containers = _changed(lambda r: r["task_definition"].update(containerDefinitions=[]))
    assert _error(no_containers) == (
        "task_definition: Value error, containerDefinitions must list at least one container"
    )
    no_image = _changed(lambda r: r["task_definition"]["containerDefinitions"][0].pop("image"))
    assert _error(no_image).startswith(
        "task_definition: Value error, containerDefinitions[0] has no"
    )
    assert _error(no_image).endswith(" image")


def test_min_approvals_cannot_exceed_the_distinct_approvers():
    error = _error(
        _changed(
            lambda r: r.update(verification={"approvers": ["alice", "alice"], "min_approvals": 2})
        )
    )
    assert error == (
        "verification: Value error, min_approvals is 2 but only 1 distinct approvers are listed"
    )
    enough = VerificationSettings(approvers=["alice", "bob"], min_approvals=2)
    assert enough.min_approvals == 2
    # With nobody listed anyone may approve, so any number of approvals can be reached.
    assert VerificationSettings(min_approvals=3).approvers == []


@pytest.mark.parametrize(
    ("change", "location"),
    [
        (lambda r: r["verification"].update(timeout_seconds=0), "verification.timeout_seconds"),
        (lambda r: r["verification"].update(bake_seconds=-1), "verification.bake_seconds"),
        (lambda r: r["verification"].update(min_approvals=0), "verification.min_approvals"),
        (lambda r: r["verification"].update(on_timeout="ignore"), "verification.on_timeout"),
        (lambda r: r["canary"].update(desired_count=0), "canary.desired_count"),
        (lambda r: r.update(max_failed_tasks=0), "max_failed_tasks"),
        (lambda r: r.update(poll_interval_seconds=0), "poll_interval_seconds"),
        (lambda r: r["stage_timeouts"].update(rollback=-5), "stage_timeouts.rollback"),
        (lambda r: r.update(cluster=""), "cluster"),
    ],
)
def test_numbers_and_choices_out_of_range_are_rejected(change, location):
    assert _error(_changed(change)).startswith(f"{location}: ")


def test_every_shared_model_is_complete_when_its_module_is_imported():
    """A model whose annotation names a class defined later is only completed at its first
    use, from its module as `sys.modules` has it then; inside the workflow sandbox that is the
    sandbox's own, which lacks the module, and the run's first `status` failed. Checked in a
    fresh interpreter: in this one another test may already have completed them."""
    check = """
import sys, pydantic, ecs_canary.models
for module in ("ecs_canary.request", "ecs_canary.status", "ecs_canary.activity_io"):
    for name, value in vars(sys.modules[module]).items():
        model = isinstance(value, type) and issubclass(value, pydantic.BaseModel)
        if model and value.__module__ == module and not value.__pydantic_complete__:
            print(module, name)
"""
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
