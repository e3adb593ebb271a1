"""The bounds a request stays in, found by the properties of test_fuzz_models.py and kept
here as plain cases: each was a request that passed validation, or crashed it, and would then
have failed the workflow task that validates it, which Temporal retries forever."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_canary.models import DeploymentRequest
from ecs_canary.strict import MAX_NESTING, MAX_SECONDS, nesting_exceeds
from tests.helpers.fuzzing import nested, valid_or_clearly_refused

REQUEST = json.loads(
    (Path(__file__).resolve().parents[2] / "examples" / "request.json").read_text()
)


def _changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    request = copy.deepcopy(REQUEST)
    change(request)
    return request


def _refused(request: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        DeploymentRequest.model_validate(request)
    return str(refused.value)


DEEP_LIST = nested(3_000)


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["task_definition"].update(family=DEEP_LIST),
        lambda r: r["task_definition"]["containerDefinitions"][0].update(image=DEEP_LIST),
        lambda r: r["service_definition"].update(tags=DEEP_LIST),
        lambda r: r["service_definition"]["deploymentConfiguration"].update(
            lifecycleHooks=[{"hookTargetArn": "arn", "roleArn": "arn", "hookDetails": DEEP_LIST}]
        ),
        lambda r: r["verification"]["steps"][0].update(overrides={"containerOverrides": DEEP_LIST}),
        lambda r: r["verification"]["steps"].append(
            {
                "name": "check",
                "type": "workflow",
                "workflow_type": "C",
                "task_queue": "q",
                "input": DEEP_LIST,
            }
        ),
    ],
    ids=["family", "image", "service tags", "hook details", "step overrides", "step input"],
)
def test_deep_nesting_is_refused_not_a_recursion_error(change):
    """botocore's check quotes a wrong value recursively: 3,000 levels were a RecursionError.
    Free-form parts (RunTask overrides, a check's input) would fail Temporal's encoding."""
    assert f"nest more than {MAX_NESTING} levels deep" in _refused(_changed(change))


def test_the_nesting_bound_is_measured_without_recursion():
    assert not nesting_exceeds(nested(MAX_NESTING, "dict"))
    assert nesting_exceeds(nested(MAX_NESTING + 1, "dict"))
    assert nesting_exceeds(nested(100_000))


STEP_DURATIONS = [
    ("run_task", "timeout_seconds"),
    ("http", "timeout_seconds"),
    ("http", "interval_seconds"),
    ("metrics", "timeout_seconds"),
    ("metrics", "period_seconds"),
    ("metrics", "window_seconds"),
    ("workflow", "timeout_seconds"),
]
STEPS = {
    "run_task": {"name": "s", "type": "run_task"},
    "http": {"name": "s", "type": "http", "url": "http://x"},
    "metrics": {
        "name": "s",
        "type": "metrics",
        "namespace": "N",
        "metric_name": "M",
        "max_value": 1,
    },
    "workflow": {"name": "s", "type": "workflow", "workflow_type": "C", "task_queue": "q"},
}


@pytest.mark.parametrize(("kind", "field"), STEP_DURATIONS)
def test_a_step_duration_longer_than_the_workflow_can_wait_is_refused(kind, field):
    """1e300 seconds passed validation, then overflowed the workflow's timedelta."""
    longest = {**STEPS[kind], field: MAX_SECONDS}
    assert valid_or_clearly_refused(DeploymentRequest, _changed(_set_steps(longest)))
    too_long = {**STEPS[kind], field: MAX_SECONDS + 1}
    assert "less than or equal to" in _refused(_changed(_set_steps(too_long)))


def _set_steps(*steps: dict[str, Any]) -> Callable[[dict[str, Any]], object]:
    return lambda r: r["verification"].update(steps=list(steps))


MODEL_DURATIONS = [
    ("verification", "timeout_seconds"),
    ("verification", "bake_seconds"),
    ("stage_timeouts", "canary_deploy"),
    ("stage_timeouts", "canary_delete"),
    ("stage_timeouts", "rolling_deploy"),
    ("stage_timeouts", "rollback"),
    (None, "poll_interval_seconds"),
]


@pytest.mark.parametrize(("section", "field"), MODEL_DURATIONS)
def test_a_request_duration_longer_than_the_workflow_can_wait_is_refused(section, field):
    def change(request: dict[str, Any]) -> None:
        (request[section] if section else request)[field] = MAX_SECONDS + 1

    assert "less than or equal to" in _refused(_changed(change))


@pytest.mark.parametrize(
    "change",
    [
        _set_steps(*({"name": f"s{i}", "type": "http", "url": "http://x"} for i in range(30_000))),
        lambda r: r.update(notifications=[{"url": "http://x", "events": ["decided"] * 200_000}]),
        lambda r: r["task_definition"].update(
            containerDefinitions=[{"name": f"c{i}", "image": "x"} for i in range(30_000)]
        ),
        lambda r: r["verification"].update(approvers=[f"a{i}" for i in range(200_000)]),
        _set_steps(*({} for _ in range(30_000))),
    ],
    ids=[
        "30,000 steps",
        "200,000 events",
        "30,000 containers",
        "200,000 approvers",
        "30,000 empty steps",
    ],
)
def test_a_request_of_a_couple_of_megabytes_is_validated_at_once(change):
    """Step names and notification events were checked for repeats in quadratic time: 11 s
    and 31 s for these, long past the SDK's deadlock detector."""
    valid_or_clearly_refused(DeploymentRequest, _changed(change))


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        (lambda r: r.update(region="us east 1"), "region", "should match pattern"),
        (lambda r: r.update(region="Mars"), "region", "should match pattern"),
        (lambda r: r.update(cluster="my cluster"), "cluster", "should match pattern"),
        (lambda r: r.update(cluster="arn:aws:ecs:x:1:cluster/c"), "cluster", "should match"),
        (
            lambda r: r["service_definition"].update(desiredCount=True),
            "service_definition",
            "desiredCount must be an integer",
        ),
        (
            lambda r: r["verification"]["steps"][0].update(overrides={"containerOverride": []}),
            "overrides",
            "not valid RunTask overrides",
        ),
        (
            lambda r: r["verification"]["steps"][0].update(
                overrides={"containerOverrides": [{"name": "tests", "command": "pytest"}]}
            ),
            "overrides",
            "not valid RunTask overrides",
        ),
        (
            _set_steps(*({"name": f"s{i}", "type": "http", "url": "http://x"} for i in range(51))),
            "steps",
            "at most 50 items",
        ),
        (
            lambda r: r["verification"].update(alarms=[f"a{i}" for i in range(101)]),
            "alarms",
            "at most 100 items",
        ),
    ],
    ids=[
        "region with spaces",
        "region not a code",
        "cluster with a space",
        "cluster ARN with a short account",
        "desiredCount true",
        "unknown override field",
        "override command a string",
        "51 steps",
        "101 alarms",
    ],
)
def test_what_aws_would_refuse_later_is_refused_before_anything_starts(change, field, says):
    """Each passed validation before, then failed at the first AWS call (a region with spaces
    raised botocore's InvalidRegionError, which the stage retried until it timed out)."""
    refusal = _refused(_changed(change))
    assert field in refusal and says in refusal, refusal


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(region="us-gov-west-1"),
        lambda r: r.update(region="cn-north-1"),
        lambda r: r.update(cluster="arn:aws:ecs:us-east-1:123456789012:cluster/ecs-canary"),
        lambda r: r["verification"]["steps"][0].update(
            overrides={"containerOverrides": [{"name": "tests", "command": ["pytest", "-x"]}]}
        ),
    ],
    ids=["GovCloud region", "China region", "cluster ARN", "container command override"],
)
def test_what_aws_accepts_still_passes(change):
    assert DeploymentRequest.model_validate(_changed(change))
