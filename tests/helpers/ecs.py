"""The ECS emulator as tests see it: its settings, boto3 clients for it, and small ECS
builders and readers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from tests.helpers.waiting import wait_until_sync

if TYPE_CHECKING:
    from tests.helpers.deployment_requests import RequestFactory

CLUSTER = "ecs-canary"
REGION = "us-east-1"
# How fast the emulator's tasks move in tests; tests that change it put these back.
START_SECONDS = 0.3
STOP_SECONDS = 0.2
# boto3 waiters polling the emulator at test speed.
FAST_WAITER = {"Delay": 0.1, "MaxAttempts": 600}


def known_speeds(emulator: Any) -> None:
    """Put back the run-time settings a test may have changed (traffic off, as the e2e
    emulator starts)."""
    emulator.admin.settings(
        task_start_seconds=START_SECONDS,
        task_stop_seconds=STOP_SECONDS,
        throttle_rate=0.0,
        traffic_rps=0.0,
        describe_services_delay_seconds=0.0,
    )


def emulator_client(url: str, service: str = "ecs", region: str = REGION, **config: Any) -> Any:
    """A boto3 client for the emulator at `url`, given explicitly (`config`: botocore Config)."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )


def register(ecs: Any, family: str = "app", image: str = "nginx:1.25", **extra: Any) -> str:
    containers = [{"name": "web", "image": image, "memory": 128, "essential": True}]
    response = ecs.register_task_definition(family=family, containerDefinitions=containers, **extra)
    return response["taskDefinition"]["taskDefinitionArn"]


def create_service(ecs: Any, name: str, task_definition: str, desired: int, **extra: Any) -> dict:
    extra.setdefault("cluster", CLUSTER)
    return ecs.create_service(
        serviceName=name, taskDefinition=task_definition, desiredCount=desired, **extra
    )["service"]


def describe(ecs: Any, service: str, cluster: str = CLUSTER) -> Any:
    """The service as DescribeServices shows it, or None if ECS never heard of it."""
    found = ecs.describe_services(cluster=cluster, services=[service])["services"]
    return found[0] if found else None


def is_stable(service: dict) -> bool:
    """What boto3's services_stable waiter checks."""
    return len(service["deployments"]) == 1 and service["runningCount"] == service["desiredCount"]


def wait_stable(ecs: Any, name: str, cluster: str = CLUSTER, timeout: float = 15.0) -> dict:
    return wait_until_sync(
        lambda: (s := describe(ecs, name, cluster)) and is_stable(s) and s, timeout
    )


def tasks_of(ecs: Any, name: str, cluster: str = CLUSTER, **filters: Any) -> list[dict]:
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, **filters)["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def messages(service: dict) -> list[str]:
    return [event["message"] for event in service["events"]]


def existing_service(
    ecs: Any,
    requests: RequestFactory,
    service: str = "myapp",
    image: str = "nginx:1.26",
    desired: int = 2,
) -> str:
    """Deploy `service` the plain way (as an earlier release would have) and wait until stable;
    returns its task definition ARN."""
    raw = requests.raw(service=service, image=image, desired=desired)
    arn = ecs.register_task_definition(**raw["task_definition"])["taskDefinition"][
        "taskDefinitionArn"
    ]
    ecs.create_service(
        cluster=raw["cluster"], serviceName=service, taskDefinition=arn, **raw["service_definition"]
    )
    ecs.get_waiter("services_stable").wait(
        cluster=raw["cluster"], services=[service], WaiterConfig=FAST_WAITER
    )
    return arn


def inventory(ecs: Any, cluster: str = CLUSTER) -> tuple[list[str], list[str]]:
    """Every task definition and service: what a refused request must leave as it was."""
    return (
        sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        sorted(ecs.list_services(cluster=cluster)["serviceArns"]),
    )


def target_group(
    elbv2: Any,
    seed: dict[str, Any],
    name: str = "web-tg",
    port: int = 80,
    deregistration_delay: int = 0,
) -> str:
    """An `ip` target group behind an Application Load Balancer's listener (ECS refuses one
    without a load balancer), with a short deregistration delay (AWS's default is 300 s);
    returns its ARN."""
    balancer = elbv2.create_load_balancer(
        Name=f"{name}-alb", Subnets=seed["subnets"], SecurityGroups=[seed["security_group"]]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    arn = elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=port, VpcId=seed["vpc_id"], TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=arn,
        Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(deregistration_delay)}
        ],
    )
    elbv2.create_listener(
        LoadBalancerArn=balancer,
        Protocol="HTTP",
        Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
    )
    return arn


def target_states(elbv2: Any, target_group_arn: str) -> dict[str, str]:
    """Target id -> state (`initial`, `healthy`, `unhealthy`, `draining`) as the ELB says."""
    found = elbv2.describe_target_health(TargetGroupArn=target_group_arn)
    return {
        t["Target"]["Id"]: t["TargetHealth"]["State"] for t in found["TargetHealthDescriptions"]
    }


def web_definition(ecs: Any, image: str = "nginx:1.25", family: str = "web") -> str:
    """An awsvpc task definition whose container `web` listens on port 80."""
    container = {
        "name": "web",
        "image": image,
        "memory": 128,
        "portMappings": [{"containerPort": 80}],
    }
    return ecs.register_task_definition(
        family=family, networkMode="awsvpc", containerDefinitions=[container]
    )["taskDefinition"]["taskDefinitionArn"]


def awsvpc_network(seed: dict[str, Any]) -> dict[str, Any]:
    """The seeded subnets and security group, for an awsvpc service or task."""
    return {
        "awsvpcConfiguration": {
            "subnets": seed["subnets"],
            "securityGroups": [seed["security_group"]],
        }
    }
