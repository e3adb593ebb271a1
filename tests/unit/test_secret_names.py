"""The starter's warning about environment names that look like secrets (secret_names.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_canary.models import DeploymentRequest
from ecs_canary.secret_names import (
    looks_like_secret,
    secret_like_environment_names,
    secret_names_warning,
)
from tests.helpers.deployment_requests import RequestFactory

SEED = {"cluster": "ecs-canary", "subnets": ["subnet-1"], "security_group": "sg-1"}


def _request(*names: str, **changes: Any) -> DeploymentRequest:
    raw = RequestFactory(SEED).raw(**changes)
    environment = [{"name": name, "value": "x"} for name in names]
    raw["task_definition"]["containerDefinitions"][0]["environment"] = environment
    return DeploymentRequest.model_validate(raw)


@pytest.mark.parametrize(
    "name",
    ["DB_PASSWORD", "db_password", "PasswordFile", "CLIENT_SECRET", "GITHUB_TOKEN", "API_KEY"],
)
def test_secret_like_names(name: str) -> None:
    assert looks_like_secret(name)


@pytest.mark.parametrize("name", ["LOG_LEVEL", "KEYBOARD", "MONKEY", "API_KEY_ID", "PORT"])
def test_ordinary_names(name: str) -> None:
    assert not looks_like_secret(name)


def test_the_warning_names_each_and_points_to_secrets() -> None:
    request = _request("LOG_LEVEL", "DB_PASSWORD", "stripe_api_key")

    assert secret_like_environment_names(request) == [
        "task_definition container web: DB_PASSWORD",
        "task_definition container web: stripe_api_key",
    ]
    warning = secret_names_warning(request)
    assert warning is not None
    assert warning.startswith("warning: environment names that look like secrets: ")
    assert "DB_PASSWORD" in warning and "LOG_LEVEL" not in warning
    assert "`secrets`" in warning and "secretsmanager" in warning and "ssm" in warning
    assert "\n" not in warning  # one paragraph on stderr


def test_no_warning_without_secret_like_names() -> None:
    assert secret_names_warning(_request("LOG_LEVEL", "PORT")) is None
    assert secret_names_warning(_request()) is None


def test_run_task_steps_are_checked_too() -> None:
    step_definition = {
        "family": "smoke",
        "containerDefinitions": [
            {"name": "tests", "image": "t:1", "environment": [{"name": "AUTH_TOKEN", "value": "x"}]}
        ],
    }
    overrides = {"containerOverrides": [{"name": "tests", "environment": [{"name": "A_SECRET"}]}]}
    steps = [
        {"type": "run_task", "name": "smoke", "task_definition": step_definition},
        {"type": "run_task", "name": "again", "overrides": overrides},
    ]
    request = _request(verification={"steps": steps})

    assert secret_like_environment_names(request) == [
        "verification.steps (smoke).task_definition container tests: AUTH_TOKEN",
        "verification.steps (again).overrides container tests: A_SECRET",
    ]
