"""A deployment's targets in its service's target groups, as the ELB sees them.

ECS registers each task of a load-balanced service in the service's target groups; for an
`awsvpc` task (Fargate) the target id is the task's ENI private address. DescribeTargetHealth
of each group, matched against this deployment's running tasks, says how many of them are
healthy and how many healthy targets the group has in all (its share of the traffic).
Read only on the polls where DescribeServices already says the deployment is steady (until
its targets are healthy too): one ListTasks, DescribeTasks per hundred tasks and one
DescribeTargetHealth per group; the polls before that cost nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from activities.aws import AwsClients, aws_errors
from activities.deployment_tasks import deployment_tasks
from ecs_canary.targets import TargetCount, target_share_text
from ecs_canary.traffic import target_group_name

HEALTHY = "healthy"


def target_groups(service: Mapping[str, Any]) -> list[str]:
    """The service's target groups (from its `loadBalancers`), each once, in order."""
    arns = [lb.get("targetGroupArn") for lb in service.get("loadBalancers") or []]
    return list(dict.fromkeys(arn for arn in arns if arn))


def private_address(task: Mapping[str, Any]) -> str | None:
    """The private IPv4 address of an awsvpc task's ENI; None for other network modes."""
    for attachment in task.get("attachments") or []:
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details") or []:
            if detail.get("name") == "privateIPv4Address":
                return str(detail["value"])
    return None


def _deployment_addresses(ecs: Any, cluster: str, deployment_id: str) -> list[str] | None:
    """The target ids of the deployment's running tasks; None when one of them has no ENI
    address (bridge or host networking: instance targets, not matched here)."""
    tasks = deployment_tasks(ecs, cluster, deployment_id, "RUNNING")
    addresses = [private_address(task) for task in tasks if task["lastStatus"] == "RUNNING"]
    return None if None in addresses else [a for a in addresses if a is not None]


def deployment_targets(
    clients: AwsClients,
    region: str | None,
    cluster: str,
    service: Mapping[str, Any],
    deployment_id: str,
) -> list[TargetCount]:
    """One count per target group of the service; empty (and no call made) without load
    balancers, or when its tasks' targets cannot be matched (then ECS's own steady state is
    the word)."""
    groups = target_groups(service)
    if not groups:
        return []
    ecs, elbv2 = clients.ecs(region), clients.elbv2(region)
    addresses = _deployment_addresses(ecs, cluster, deployment_id)
    if addresses is None:
        return []
    ours = set(addresses)
    counts = []
    for group in groups:
        with aws_errors("DescribeTargetHealth"):
            found = elbv2.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
        healthy = [d["Target"]["Id"] for d in found if d["TargetHealth"]["State"] == HEALTHY]
        counts.append(
            TargetCount(
                target_group_arn=group,
                tasks=len(addresses),
                healthy=sum(target in ours for target in healthy),
                healthy_in_group=len(healthy),
            )
        )
    return counts


def waiting_for_targets_text(service: str, counts: list[TargetCount]) -> str:
    """`Waiting for targets of myappCanary to be healthy: 0/1 in my-tg`."""
    groups = ", ".join(
        f"{count.healthy}/{count.tasks} in {target_group_name(count.target_group_arn)}"
        for count in counts
        if not count.all_healthy
    )
    return f"Waiting for targets of {service} to be healthy: {groups}"


def targets_reached_text(service: str, counts: list[TargetCount]) -> str:
    """`Service myappCanary has 1 of 4 healthy targets in my-tg, ~25 %`."""
    return f"Service {service} has " + "; ".join(target_share_text(c) for c in counts)
