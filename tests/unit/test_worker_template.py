"""deploy/worker.cfn.yaml, the worker on ECS Fargate, read as CloudFormation reads it: its task
role is exactly deploy/iam-policy.json, no role of its own can be passed on by the worker, its
secrets reach only the execution role, and its container is health-checked with
`python worker.py --check` as the image is. (tests/e2e/test_worker_stack.py creates it.)"""

from __future__ import annotations

import json
import re
import subprocess
from fnmatch import fnmatchcase
from typing import Any

import pytest

from ecs_canary.config import WorkerSettings
from ecs_canary.health_check import CHECK_FLAG, DEADLINE_SECONDS
from ecs_canary.versioning import DEFAULT_DEPLOYMENT_NAME
from tests.helpers import BIN, ROOT

TEMPLATE_FILE = ROOT / "deploy" / "worker.cfn.yaml"
POLICY_FILE = ROOT / "deploy" / "iam-policy.json"
DOCKERFILE = ROOT / "Dockerfile"
HEALTH_CHECK_COMMAND = ["python", "worker.py", CHECK_FLAG]
# The names CloudFormation gives the template's roles (no RoleName: `<stack>-<logical id>-<id>`).
WORKER_ROLE_NAMES = ("my-stack-TaskRole-1A2B3C4D5E6F", "my-stack-ExecutionRole-1A2B3C4D5E6F")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template as CloudFormation reads it (its short tags: `!Ref`, `!If`). cfn-lint's
    reader is imported here: at 2.6 s, every xdist worker paid it at collection."""
    from cfnlint.decode import cfn_yaml

    loaded: dict[str, Any] = cfn_yaml.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    return loaded


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][logical_id]["Properties"]
    return properties


def _container(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = _resource(template, "TaskDefinition")["ContainerDefinitions"]
    return dict(container)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@pytest.mark.checker
def test_cfn_lint_passes() -> None:
    # What `make lint` runs; any finding fails.
    linted = subprocess.run(
        [str(BIN / "cfn-lint"), str(TEMPLATE_FILE)], capture_output=True, text=True, timeout=120
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_task_role_carries_exactly_the_policy_file(template: dict[str, Any]) -> None:
    (policy,) = _resource(template, "TaskRole")["Policies"]
    expected = json.loads(POLICY_FILE.read_text(encoding="utf-8"))
    assert policy["PolicyDocument"]["Version"] == expected["Version"]
    assert policy["PolicyDocument"]["Statement"] == expected["Statement"]


def test_the_worker_cannot_pass_its_own_roles(template: dict[str, Any]) -> None:
    # A task definition the worker registers runs with whatever role the worker may pass: its
    # own role would give a deployed app the worker's permissions, the execution role its
    # secrets. PassRole names the deployed app's roles only, and only to ECS tasks.
    for logical_id in ("TaskRole", "ExecutionRole"):
        assert "RoleName" not in _resource(template, logical_id)  # named by CloudFormation
    (policy,) = _resource(template, "TaskRole")["Policies"]
    passing = [s for s in policy["PolicyDocument"]["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing
    for statement in passing:
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        }
        for resource in _listed(statement["Resource"]):
            for name in WORKER_ROLE_NAMES:
                assert not fnmatchcase(f"arn:aws:iam::123456789012:role/{name}", resource)


def test_only_the_execution_role_reads_the_secrets(template: dict[str, Any]) -> None:
    secret_parameters = {"TemporalApiKeySecretArn", "PayloadKeySecretArn"}
    execution = _resource(template, "ExecutionRole")
    condition, (policy,), _ = execution["Policies"]["Fn::If"]
    assert condition == "HasSecrets"
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    read = {choice["Fn::If"][1]["Ref"] for choice in statement["Resource"]}
    assert read == secret_parameters
    task_role = json.dumps(_resource(template, "TaskRole"))
    assert not any(name in task_role for name in secret_parameters)
    # ECS tasks only, in this account: the task role's trust (no other service may use it).
    (trust,) = _resource(template, "TaskRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_container_is_health_checked_like_the_image(template: dict[str, Any]) -> None:
    health = _container(template)["HealthCheck"]
    assert health["Command"] == ["CMD", *HEALTH_CHECK_COMMAND]
    dockerfile = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    (line,) = [line for line in dockerfile.splitlines() if line.startswith("HEALTHCHECK")]
    assert line.endswith("CMD " + json.dumps(HEALTH_CHECK_COMMAND))
    assert f"--timeout={health['Timeout']}s" in line
    # The check answers within 10 s; the container's timeout leaves room over that.
    assert DEADLINE_SECONDS < 10 <= health["Timeout"]


def test_the_service_runs_two_workers_with_the_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["DesiredCount"]["Default"] == 2
    assert _resource(template, "Service")["DesiredCount"] == {"Ref": "DesiredCount"}
    container = _container(template)
    environment = {
        item["Name"]: item["Value"] for item in container["Environment"] if "Name" in item
    }
    assert environment["TEMPORAL_ADDRESS"] == {"Ref": "TemporalAddress"}
    assert environment["TEMPORAL_NAMESPACE"] == {"Ref": "TemporalNamespace"}
    assert environment["ECS_CANARY_METRICS_PORT"] == {"Ref": "MetricsPort"}
    assert environment["ECS_CANARY_METRICS_HOST"] == "0.0.0.0"  # scraped from outside the task
    # Worker Versioning: empty by default, so a stack runs unversioned until given a build.
    assert environment["ECS_CANARY_BUILD_ID"] == {"Ref": "BuildId"}
    assert parameters["BuildId"]["Default"] == ""
    assert environment["ECS_CANARY_DEPLOYMENT_NAME"] == {"Ref": "WorkerDeploymentName"}
    assert parameters["WorkerDeploymentName"]["Default"] == DEFAULT_DEPLOYMENT_NAME
    assert container["PortMappings"][0]["ContainerPort"] == {"Ref": "MetricsPort"}
    # ECS's SIGKILL comes after the worker's graceful shutdown, not during it.
    default_shutdown = WorkerSettings.from_env().graceful_shutdown_seconds
    assert container["StopTimeout"] > default_shutdown
