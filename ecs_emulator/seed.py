"""A ready local account: VPC, two subnets, a security group and the cluster.

moto refuses awsvpc services without real subnets and security groups, so every fresh
state (start, reset) gets them. Seeding goes through the public API with boto3.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from .settings import EmulatorSettings

INTERNAL_HEADER = "X-Ecs-Emulator-Internal"


def _client(service: str, url: str, region: str) -> Any:
    client = boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 10}),
    )

    def mark_internal(request: Any, **_: Any) -> None:
        request.headers[INTERNAL_HEADER] = "1"

    client.meta.events.register("before-send.*.*", mark_internal)
    return client


class AccountSeeder:
    """Seeds every fresh state of one emulator. Its boto3 clients are made once: making the
    three anew took as much CPU as the seeding calls themselves, before every end-to-end test."""

    def __init__(self, url: str, settings: EmulatorSettings) -> None:
        self.settings = settings
        region = settings.region
        self._ec2 = _client("ec2", url, region)
        self._ecs = _client("ecs", url, region)
        self._sts = _client("sts", url, region)

    def seed(self) -> dict[str, Any]:
        """Create the seeded resources; returns the info the admin endpoint reports."""
        region, cluster, ec2 = self.settings.region, self.settings.cluster, self._ec2
        vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=f"{region}{zone}")[
                "Subnet"
            ]["SubnetId"]
            for cidr, zone in (("10.42.1.0/24", "a"), ("10.42.2.0/24", "b"))
        ]
        security_group = ec2.create_security_group(
            GroupName=f"{cluster}-tasks", Description="ECS emulator tasks", VpcId=vpc_id
        )["GroupId"]
        cluster_arn = self._ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
        account_id = self._sts.get_caller_identity()["Account"]
        return {
            "cluster": cluster,
            "cluster_arn": cluster_arn,
            "region": region,
            "account_id": account_id,
            "vpc_id": vpc_id,
            "subnets": subnets,
            "security_group": security_group,
        }
