"""deploy/worker.cfn.yaml created on the ECS emulator through boto3's CloudFormation (moto's,
behind AWS_ENDPOINT_URL), with its two secrets in the emulator's Secrets Manager: the stack
makes the worker's ECS service, its task definition, its roles and its log group, and the
container, started as ECS would start it, passes its health check.

moto 5.2.5's CloudFormation carries only part of some resources over to ECS and IAM (its
`create_from_cloudformation_json` reads no more): a task definition's family, containers and
memory, not its roles, network mode, CPU or compatibilities; a service's cluster, name, task
definition and desired count, not its launch type, network or deployment configuration; a
role's trust and inline policies, not its managed policies. Where moto leaves a value out, the
test below says so and checks the rest; tests/unit/test_worker_template.py checks the template
itself for those.
"""

from __future__ import annotations

import ast
import json
import os
import stat
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
from temporalio.testing import WorkflowEnvironment

from ecs_canary.codec import KEY_FILE_ENV, new_key
from ecs_canary.health_check import CHECK_FLAG
from tests.helpers import REGION, ROOT, run_check, wait_stable, worker_environment

TEMPLATE = (ROOT / "deploy" / "worker.cfn.yaml").read_text(encoding="utf-8")
POLICY = json.loads((ROOT / "deploy" / "iam-policy.json").read_text(encoding="utf-8"))
IMAGE = "ecs-canary-worker:0.1.0"


@dataclass
class WorkerStack:
    outputs: dict[str, str]
    resources: dict[str, dict[str, Any]]  # logical id -> stack resource summary
    secrets: dict[str, str]  # parameter -> secret ARN
    cluster: str


@pytest.fixture
def stack(ecs_state: dict[str, Any], temporal_env: WorkflowEnvironment) -> WorkerStack:
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    secrets = {
        "TemporalApiKeySecretArn": secretsmanager.create_secret(
            Name="ecs-canary/temporal-api-key", SecretString="an-api-key"
        )["ARN"],
        "PayloadKeySecretArn": secretsmanager.create_secret(
            Name="ecs-canary/payload-keys",
            SecretString=json.dumps({"active": "k1", "keys": {"k1": new_key()}}),
        )["ARN"],
    }
    parameters = {
        "Image": IMAGE,
        "Cluster": ecs_state["cluster"],
        "Subnets": ",".join(ecs_state["subnets"]),
        "SecurityGroups": ecs_state["security_group"],
        "TemporalAddress": temporal_env.client.service_client.config.target_host,
        "TemporalNamespace": "default",
        **secrets,
    }
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    cloudformation.create_stack(
        StackName="ecs-canary-worker",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    (created,) = cloudformation.describe_stacks(StackName="ecs-canary-worker")["Stacks"]
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    summaries = cloudformation.list_stack_resources(StackName="ecs-canary-worker")
    return WorkerStack(
        outputs={o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]},
        resources={r["LogicalResourceId"]: r for r in summaries["StackResourceSummaries"]},
        secrets=secrets,
        cluster=ecs_state["cluster"],
    )


def _inline_policy(iam: Any, role_name: str, policy_name: str) -> dict[str, Any]:
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, dict):
        return document
    # moto 5.2.5 keeps a CloudFormation role's inline policy as the template's mapping and
    # answers with Python's repr of it, not JSON.
    parsed: dict[str, Any] = ast.literal_eval(document)
    return parsed


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def _container(stack: WorkerStack) -> dict[str, Any]:
    ecs = boto3.client("ecs", region_name=REGION)
    definition = ecs.describe_task_definition(taskDefinition=stack.outputs["TaskDefinitionArn"])
    (container,) = definition["taskDefinition"]["containerDefinitions"]
    return dict(container)


def test_the_stack_creates_the_worker_service_its_task_definition_and_roles(
    stack: WorkerStack,
) -> None:
    assert {logical_id: r["ResourceType"] for logical_id, r in stack.resources.items()} == {
        "LogGroup": "AWS::Logs::LogGroup",
        "ExecutionRole": "AWS::IAM::Role",
        "TaskRole": "AWS::IAM::Role",
        "TaskDefinition": "AWS::ECS::TaskDefinition",
        "Service": "AWS::ECS::Service",
    }
    assert {r["ResourceStatus"] for r in stack.resources.values()} == {"CREATE_COMPLETE"}

    # The service, found in the cluster as an operator would find it.
    ecs = boto3.client("ecs", region_name=REGION)
    assert stack.outputs["ServiceArn"] in ecs.list_services(cluster=stack.cluster)["serviceArns"]
    (service,) = ecs.describe_services(
        cluster=stack.cluster, services=[stack.outputs["ServiceArn"]]
    )["services"]
    assert service["desiredCount"] == 2
    assert service["taskDefinition"] == stack.outputs["TaskDefinitionArn"]
    # The emulator's scheduler runs it like any service: two worker tasks.
    running = wait_stable(ecs, service["serviceName"], stack.cluster)
    assert running["runningCount"] == 2

    # Its task definition: the worker's container, its settings, secrets, health check, logs.
    definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    assert definition["taskDefinition"]["family"] == "ecs-canary-worker"
    container = _container(stack)
    assert container["image"] == IMAGE
    environment = {item["name"]: item["value"] for item in container["environment"]}
    assert environment["TEMPORAL_NAMESPACE"] == "default"
    assert environment["ECS_CANARY_METRICS_PORT"] == "9464"
    assert {s["name"]: s["valueFrom"] for s in container["secrets"]} == {
        "TEMPORAL_API_KEY": stack.secrets["TemporalApiKeySecretArn"],
        "PAYLOAD_KEY_FILE_CONTENT": stack.secrets["PayloadKeySecretArn"],
    }
    assert container["healthCheck"]["command"] == ["CMD", "python", "worker.py", CHECK_FLAG]
    assert container["portMappings"][0]["containerPort"] == 9464
    logs_options = container["logConfiguration"]["options"]
    assert logs_options["awslogs-group"] == stack.outputs["LogGroupName"]
    # Its roles: moto 5.2.5 leaves them off the task definition (see above); where it keeps
    # them, they are the stack's.
    for key, output in (("taskRoleArn", "TaskRoleArn"), ("executionRoleArn", "ExecutionRoleArn")):
        assert definition["taskDefinition"].get(key, stack.outputs[output]) == stack.outputs[output]

    # The roles themselves: the task role is exactly deploy/iam-policy.json, the execution role
    # reads exactly the two secrets; both are for ECS tasks only.
    iam = boto3.client("iam", region_name=REGION)
    task_role = _role_name(stack.outputs["TaskRoleArn"])
    assert iam.list_role_policies(RoleName=task_role)["PolicyNames"] == ["ecs-canary-worker"]
    assert _inline_policy(iam, task_role, "ecs-canary-worker") == POLICY
    execution_role = _role_name(stack.outputs["ExecutionRoleArn"])
    (secrets_statement,) = _inline_policy(iam, execution_role, "read-the-worker-secrets")[
        "Statement"
    ]
    assert secrets_statement["Action"] == "secretsmanager:GetSecretValue"
    assert sorted(secrets_statement["Resource"]) == sorted(stack.secrets.values())
    for role in (task_role, execution_role):
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        assert {s["Principal"]["Service"] for s in trust["Statement"]} == {
            "ecs-tasks.amazonaws.com"
        }

    # The log group, with its retention.
    logs = boto3.client("logs", region_name=REGION)
    (group,) = logs.describe_log_groups(logGroupNamePrefix=stack.outputs["LogGroupName"])[
        "logGroups"
    ]
    assert group["retentionInDays"] == 30


def test_the_worker_cannot_pass_its_own_roles(stack: WorkerStack) -> None:
    iam = boto3.client("iam", region_name=REGION)
    task_role = _role_name(stack.outputs["TaskRoleArn"])
    policy = _inline_policy(iam, task_role, "ecs-canary-worker")
    passable = [
        resource
        for statement in policy["Statement"]
        if statement["Action"] == "iam:PassRole"
        for resource in statement["Resource"]
    ]
    assert passable
    for role_arn in (stack.outputs["TaskRoleArn"], stack.outputs["ExecutionRoleArn"]):
        assert not [pattern for pattern in passable if fnmatchcase(role_arn, pattern)], role_arn


async def test_the_container_started_as_ecs_starts_it_is_healthy(
    stack: WorkerStack, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    container = _container(stack)
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    env = worker_environment(temporal_env.client.service_client.config.target_host)
    env.update({item["name"]: item["value"] for item in container["environment"]})
    for secret in container["secrets"]:  # as ECS resolves them when the task starts
        value = secretsmanager.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
        env[secret["name"]] = value
    # The dev server speaks no TLS, which an API key turns on (Temporal Cloud's case).
    del env["TEMPORAL_API_KEY"]
    # The container's own path, moved out of the shared /tmp of the test machine.
    key_file = tmp_path / "payload-keys.json"
    env[KEY_FILE_ENV] = str(key_file)

    # The container's command, with the check in place of the worker it would exec.
    command = container["command"]
    assert command[-2:] == ["python", "worker.py"]
    started = await run_check(env, [*command[:-2], sys.executable, "worker.py", CHECK_FLAG])
    assert (started.code, started.lines) == (0, ["worker --check: ok"])
    assert key_file.read_text(encoding="utf-8") == env["PAYLOAD_KEY_FILE_CONTENT"]
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    # Then ECS's health check, in the same container.
    health_command = container["healthCheck"]["command"][1:]
    assert health_command[0] == "python"
    checked = await run_check(env, [sys.executable, *health_command[1:]])
    assert (checked.code, checked.lines) == (0, ["worker --check: ok"])
