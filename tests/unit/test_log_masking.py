"""Logs never print task definition `environment` values (ecs_canary/masking.py, wired into
every process's logging by ecs_canary/logs.py), whatever quotes them: a field, a message, an
exception's text, pydantic's shortened echo of a request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from pydantic import ValidationError

from ecs_canary.logs import configure_logging
from ecs_canary.masking import MASK, mask_text, mask_value
from ecs_canary.models import DeploymentRequest
from tests.helpers.deployment_requests import RequestFactory

MARKER = "ECS_CANARY_MARKER_log_5e1f"
SEED = {"cluster": "ecs-canary", "subnets": ["subnet-1"], "security_group": "sg-1"}


def _request(*environment: dict[str, Any], **changes: Any) -> dict[str, Any]:
    request = RequestFactory(SEED).raw(**changes)
    request["task_definition"]["containerDefinitions"][0]["environment"] = list(environment)
    return request


def _validation_text(request: dict[str, Any]) -> str:
    """What the workflow makes of an invalid request: `Invalid deployment request: {err}`."""
    with pytest.raises(ValidationError) as caught:
        DeploymentRequest.model_validate(request)
    return f"Invalid deployment request: {caught.value}"


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The process's real logging (JSON lines) into a buffer; stderr again afterwards."""
    monkeypatch.setenv("LOG_FORMAT", "json")
    stream = io.StringIO()
    configure_logging(stream)
    yield stream
    monkeypatch.delenv("LOG_FORMAT")
    configure_logging()


def test_a_task_definition_as_a_field_is_logged_without_its_values(rendered: io.StringIO) -> None:
    task_definition = _request({"name": "DB_URL", "value": MARKER})["task_definition"]
    structlog.get_logger("test").info("registering", task_definition=task_definition)

    line = json.loads(rendered.getvalue())
    container = line["task_definition"]["containerDefinitions"][0]
    assert container["environment"] == [{"name": "DB_URL", "value": MASK}]
    assert container["image"] == "nginx:1.27"  # the rest stays readable
    assert MARKER not in rendered.getvalue()


def test_a_validation_error_in_a_traceback_is_masked(rendered: io.StringIO) -> None:
    # A value of the wrong type: botocore names it, and pydantic's shortened echo of the input
    # ends with the environment, so a fragment of the marker would survive the cut.
    bad = _request({"name": "DB_URL", "value": MARKER}, {"name": "PORT", "value": 5432})
    try:
        DeploymentRequest.model_validate(bad)
    except ValidationError:
        logging.getLogger("temporalio.workflow").warning("Workflow task failed", exc_info=True)

    output = rendered.getvalue()
    assert "environment[1].value, value: ***" in output
    assert MARKER[-8:] not in output and "5432" not in output
    assert "input_value=***" in output


def test_masking_hides_values_in_every_form_they_are_quoted() -> None:
    task_definition = _request({"name": "DB_URL", "value": MARKER})["task_definition"]
    forms = {
        "repr": repr(task_definition),
        "json": json.dumps(task_definition),
        "json in json": json.dumps(json.dumps(task_definition)),
        "cut short": json.dumps(task_definition)[:-6],
        "validation": _validation_text(_request({"name": "X", "value": MARKER}, cpu=1)),
    }
    for form, text in forms.items():
        masked = mask_text(text)
        assert MARKER[-6:] not in masked, form
        assert "DB_URL" in masked or form == "validation", form


def test_run_task_overrides_are_masked_too() -> None:
    overrides = {
        "containerOverrides": [{"name": "t", "environment": [{"name": "A", "value": MARKER}]}]
    }
    assert mask_value({"step": overrides}) == {
        "step": {
            "containerOverrides": [{"name": "t", "environment": [{"name": "A", "value": MASK}]}]
        }
    }


def test_text_without_an_environment_is_left_alone() -> None:
    text = "Alarm HighErrors is in ALARM: {'value': 12.5, 'threshold': 10}"
    assert mask_text(text) == text
    assert mask_value({"desired": 3, "tags": ("a", "b")}) == {"desired": 3, "tags": ("a", "b")}


def test_a_pydantic_model_field_is_masked() -> None:
    request = DeploymentRequest.model_validate(_request({"name": "DB_URL", "value": MARKER}))
    masked = mask_value({"request": request})
    assert MARKER not in json.dumps(masked)
    assert masked["request"]["service_name"] == "myapp"
