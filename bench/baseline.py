"""The baseline: the same four stages written by hand with plain boto3 and boto3's own waiters.

    register task definition -> create <service>Canary (desired 1) -> services_stable
    -> (gate decided at once) -> delete canary (force) -> services_inactive
    -> update <service> to the new task definition at the desired count -> services_stable

Every waiter polls with WaiterConfig Delay = the poll interval. Run on its own against any
ECS endpoint (AWS_ENDPOINT_URL for the emulator):

    python bench/baseline.py --cluster ecs-canary --service myapp --request request.json \
        --poll 0.25

where request.json holds `task_definition`, `service_definition` and `desired_count` (the
shape of an ecs-canary deployment request). Prints a JSON summary with the stage times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import boto3


def deploy(
    ecs: Any,
    *,
    cluster: str,
    service: str,
    task_definition: dict[str, Any],
    service_definition: dict[str, Any],
    desired_count: int,
    poll_seconds: float,
    max_attempts: int = 100_000,
) -> dict[str, Any]:
    """One canary deployment the plain way; returns wall times (time.time()) of each stage."""
    canary = f"{service}Canary"
    waiter_config = {"Delay": poll_seconds, "MaxAttempts": max_attempts}
    create_args = {k: v for k, v in service_definition.items() if k != "desiredCount"}
    marks: dict[str, float] = {"start": time.time()}

    arn = ecs.register_task_definition(**task_definition)["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster, serviceName=canary, taskDefinition=arn, desiredCount=1, **create_args
    )
    ecs.get_waiter("services_stable").wait(
        cluster=cluster, services=[canary], WaiterConfig=waiter_config
    )
    marks["canary_stable"] = time.time()

    # Verification gate: decided the moment it opens.
    ecs.delete_service(cluster=cluster, service=canary, force=True)
    ecs.get_waiter("services_inactive").wait(
        cluster=cluster, services=[canary], WaiterConfig=waiter_config
    )
    marks["canary_inactive"] = time.time()

    ecs.update_service(
        cluster=cluster, service=service, taskDefinition=arn, desiredCount=desired_count
    )
    ecs.get_waiter("services_stable").wait(
        cluster=cluster, services=[service], WaiterConfig=waiter_config
    )
    marks["end"] = time.time()
    return {"task_definition_arn": arn, "canary_service": canary, "marks": marks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--request", required=True, help="JSON file (deployment request shape)")
    parser.add_argument("--poll", type=float, default=10.0, help="waiter Delay in seconds")
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)
    with open(args.request) as handle:
        request = json.load(handle)
    ecs = boto3.client("ecs", region_name=args.region)
    result = deploy(
        ecs,
        cluster=args.cluster,
        service=args.service,
        task_definition=request["task_definition"],
        service_definition=request["service_definition"],
        desired_count=request.get(
            "desired_count", request["service_definition"].get("desiredCount", 1)
        ),
        poll_seconds=args.poll,
    )
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
