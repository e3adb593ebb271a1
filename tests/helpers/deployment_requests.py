"""Deployment requests and activity inputs that fit the emulator's seeded account, with
test-sized timings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ecs_canary.models import CreateServiceInput, DeploymentRequest, Stage, WaitSteadyInput
from tests.helpers.ecs import CLUSTER, REGION


class RequestFactory:
    """Requests for `service` (default `myapp`, 3 tasks) in the emulator's VPC; keyword
    arguments replace top-level fields, and dicts are merged into the defaults' sections."""

    def __init__(self, seed: dict[str, Any]) -> None:
        self.seed = seed

    def raw(
        self, service: str = "myapp", image: str = "nginx:1.27", desired: int = 3, **extra: Any
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "cluster": self.seed["cluster"],
            "service_name": service,
            "task_definition": {
                "family": f"{service}-task",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [
                    {
                        "name": "web",
                        "image": image,
                        "essential": True,
                        "portMappings": [{"containerPort": 80}],
                    }
                ],
            },
            "service_definition": {
                "desiredCount": desired,
                "launchType": "FARGATE",
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": self.seed["subnets"],
                        "securityGroups": [self.seed["security_group"]],
                        "assignPublicIp": "DISABLED",
                    }
                },
            },
            "poll_interval_seconds": 0.1,
            "verification": {"timeout_seconds": 600},
            "stage_timeouts": {
                "canary_deploy": 60,
                "canary_delete": 60,
                "rolling_deploy": 90,
                "rollback": 90,
            },
        }
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(request.get(key), dict):
                request[key] = {**request[key], **value}
            else:
                request[key] = value
        return copy.deepcopy(request)

    def model(self, **kwargs: Any) -> DeploymentRequest:
        return DeploymentRequest.model_validate(self.raw(**kwargs))


def analysis_settings(**fields: Any) -> dict[str, Any]:
    """`verification.analysis` with one metric of the emulator's own (5XX count per service)
    and one short interval, so a test's run reaches the gate quickly; `fields` replace
    or add settings (e.g. `baseline_target_group_arn`)."""
    metric = {
        "name": "errors",
        "namespace": "ECS/Emulator",
        "metric_name": "Errors",
        "dimensions": {"ClusterName": "{cluster}", "ServiceName": "{service}"},
        "stat": "Sum",
    }
    short = {"interval_seconds": 1, "intervals": 1, "period_seconds": 1, "min_data_points": 1}
    return {**short, "metrics": [metric], **fields}


def request_file(directory: Path, request: Any, name: str = "request.json") -> str:
    """`request` written as JSON to `directory/name`, for the CLIs' input files."""
    path = directory / name
    path.write_text(json.dumps(request))
    return str(path)


def canary_create_input(
    requests: RequestFactory, ecs: Any, image: str = "nginx:1.27", **changes: Any
) -> CreateServiceInput:
    """The create_service input of a canary (fields replaced by `changes`), on a freshly
    registered revision unless `task_definition_arn` is given."""
    raw = requests.raw(image=image)
    if "task_definition_arn" not in changes:
        registered = ecs.register_task_definition(**raw["task_definition"])
        changes["task_definition_arn"] = registered["taskDefinition"]["taskDefinitionArn"]
    fields: dict[str, Any] = {
        "region": REGION,
        "cluster": CLUSTER,
        "service": "myappCanary",
        "stage": Stage.CANARY_DEPLOY,
        "service_definition": raw["service_definition"],
        "desired_count": 1,
        "tags": {},
    }
    return CreateServiceInput(**{**fields, **changes})


def canary_wait_input(create: CreateServiceInput, **timing: Any) -> WaitSteadyInput:
    """The wait_for_steady_state input for that canary (poll every 0.1 s unless given)."""
    timing.setdefault("poll_interval_seconds", 0.1)
    return WaitSteadyInput(
        region=create.region,
        cluster=create.cluster,
        service=create.service,
        stage=create.stage,
        task_definition_arn=create.task_definition_arn,
        max_failed_tasks=2,
        **timing,
    )
