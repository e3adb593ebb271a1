"""The emulator's standalone tasks (RunTask/StopTask) and CloudWatch metrics, through boto3
over HTTP against the in-process emulator (``tests/e2e/conftest.py``'s session fixture).

These back the verification steps: a test suite run as a one-off ECS task against a canary,
and metrics a bad canary is judged by.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.ecs.models import EC2ContainerServiceBackend

from ecs_emulator import moto_internals
from tests.helpers import CLUSTER, REGION, wait_until_sync


@pytest.fixture
def run_seconds(emulator: Any) -> float:
    """How long a standalone task runs (fixed when the emulator started)."""
    return float(emulator.settings.task_run_seconds)


def register(ecs: Any, family: str, *containers: tuple[str, str, bool], **extra: Any) -> str:
    """A task definition with (name, image, essential) containers."""
    definitions = [
        {"name": name, "image": image, "memory": 128, "essential": essential}
        for name, image, essential in containers
    ]
    response = ecs.register_task_definition(
        family=family, containerDefinitions=definitions, **extra
    )
    return response["taskDefinition"]["taskDefinitionArn"]


def run(ecs: Any, task_definition: str, **extra: Any) -> list[dict[str, Any]]:
    extra.setdefault("launchType", "FARGATE")
    response = ecs.run_task(cluster=CLUSTER, taskDefinition=task_definition, **extra)
    assert response["failures"] == []
    return response["tasks"]


def describe(ecs: Any, arns: list[str]) -> list[dict[str, Any]]:
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]


def wait_status(ecs: Any, arns: list[str], status: str, timeout: float = 15.0) -> list[dict]:
    """Wait until every task's lastStatus is ``status``; returns them."""
    return wait_until_sync(
        lambda: (
            (tasks := describe(ecs, arns))
            and all(t["lastStatus"] == status for t in tasks)
            and tasks
        ),
        timeout,
    )


def listed(ecs: Any, **filters: Any) -> set[str]:
    return set(ecs.list_tasks(cluster=CLUSTER, **filters)["taskArns"])


def test_run_task_starts_runs_and_exits_zero(ecs: Any, run_seconds: float) -> None:
    task_definition = register(ecs, "tests", ("tests", "runner:1.0", True))
    overrides = {"containerOverrides": [{"name": "tests", "command": ["pytest", "-k", "smoke"]}]}
    started = run(ecs, task_definition, count=2, startedBy="verify-1", overrides=overrides)
    other = run(ecs, task_definition, startedBy="verify-2")
    arns = [t["taskArn"] for t in started]
    assert len(arns) == 2
    for task in started:
        assert (task["lastStatus"], task["desiredStatus"]) == ("PROVISIONING", "RUNNING")
        assert task["startedBy"] == "verify-1"
        assert task["group"] == "family:tests"
        assert task["taskDefinitionArn"] == task_definition
        assert task["overrides"] == overrides
        assert task["createdAt"] and "stoppedReason" not in task

    running = wait_status(ecs, arns, "RUNNING")
    assert all(t["startedAt"] and "exitCode" not in t["containers"][0] for t in running)
    assert listed(ecs, startedBy="verify-1") == set(arns)
    assert listed(ecs, family="tests") == set(arns) | {other[0]["taskArn"]}

    stopped = wait_status(ecs, arns, "STOPPED", timeout=run_seconds + 15)
    for task in stopped:
        assert task["desiredStatus"] == "STOPPED"
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["overrides"] == overrides
        (container,) = task["containers"]
        assert (container["name"], container["exitCode"]) == ("tests", 0)
        assert container["lastStatus"] == "STOPPED"
        assert task["createdAt"] <= task["startedAt"] < task["stoppingAt"] <= task["stoppedAt"]
        ran = (task["stoppingAt"] - task["startedAt"]).total_seconds()
        assert ran >= run_seconds - 0.05
    # ECS lists tasks whose desired status is RUNNING unless asked for STOPPED ones.
    assert listed(ecs, startedBy="verify-1") == set()
    assert listed(ecs, startedBy="verify-1", desiredStatus="STOPPED") == set(arns)


def test_testfail_image_exits_one(ecs: Any, run_seconds: float) -> None:
    task_definition = register(
        ecs, "failing", ("tests", "runner:testfail-smoke", True), ("proxy", "envoy:1", False)
    )
    (task,) = run(ecs, task_definition, startedBy="verify-fail")
    wait_status(ecs, [task["taskArn"]], "RUNNING")
    (stopped,) = wait_status(ecs, [task["taskArn"]], "STOPPED", timeout=run_seconds + 15)
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    exit_codes = {c["name"]: c["exitCode"] for c in stopped["containers"]}
    assert exit_codes == {"tests": 1, "proxy": 0}


def test_testhang_runs_until_stopped_by_the_user(ecs: Any, run_seconds: float) -> None:
    hanging = register(ecs, "hanging", ("tests", "runner:testhang", True))
    normal = register(ecs, "normal", ("tests", "runner:1.0", True))
    (hang,) = run(ecs, hanging, startedBy="verify-hang")
    wait_status(ecs, [hang["taskArn"]], "RUNNING")
    # A normal task started after the hanging one was RUNNING has run for its whole run time
    # and stopped: the emulator's clock is well past the hanging task's run time.
    (probe,) = run(ecs, normal)
    wait_status(ecs, [probe["taskArn"]], "STOPPED", timeout=run_seconds + 15)
    (still,) = describe(ecs, [hang["taskArn"]])
    assert (still["lastStatus"], still["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert listed(ecs, startedBy="verify-hang") == {hang["taskArn"]}

    answer = ecs.stop_task(cluster=CLUSTER, task=hang["taskArn"], reason="verification timed out")
    assert answer["task"]["desiredStatus"] == "STOPPED"
    assert answer["task"]["lastStatus"] in ("DEACTIVATING", "STOPPING")
    (stopped,) = wait_status(ecs, [hang["taskArn"]], "STOPPED")
    assert stopped["stopCode"] == "UserInitiated"
    assert stopped["stoppedReason"] == "verification timed out"
    assert stopped["containers"][0]["exitCode"] == 137  # SIGKILL after the stop timeout
    assert listed(ecs, startedBy="verify-hang", desiredStatus="STOPPED") == {hang["taskArn"]}

    # Stopping it again changes nothing, as in ECS.
    again = ecs.stop_task(cluster=CLUSTER, task=hang["taskArn"].split("/")[-1], reason="again")
    assert again["task"]["stoppedReason"] == "verification timed out"


def test_stop_task_defaults_and_errors(ecs: Any, ecs_state: dict[str, Any]) -> None:
    slow = register(ecs, "slow", ("tests", "runner:slow", True))
    (task,) = run(ecs, slow)
    ecs.stop_task(cluster=CLUSTER, task=task["taskArn"])
    (stopped,) = wait_status(ecs, [task["taskArn"]], "STOPPED")
    assert stopped["stoppedReason"] == "Task stopped by user"
    assert stopped["stopCode"] == "UserInitiated"
    assert "startedAt" not in stopped
    assert "exitCode" not in stopped["containers"][0]  # it never started

    with pytest.raises(ClientError) as missing:
        ecs.stop_task(cluster=CLUSTER, task="0123456789abcdef0123456789abcdef")
    assert missing.value.response["Error"]["Code"] == "InvalidParameterException"
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=["0123456789abcdef0123456789abcdef"])
    assert described["failures"] == [
        {"arn": "0123456789abcdef0123456789abcdef", "reason": "MISSING"}
    ]
    with pytest.raises(ClientError) as no_cluster:
        ecs.run_task(cluster="nowhere", taskDefinition=slow, launchType="FARGATE")
    assert no_cluster.value.response["Error"]["Code"] == "ClusterNotFoundException"
    awsvpc = register(
        ecs,
        "vpc",
        ("tests", "runner:1.0", True),
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
    )
    with pytest.raises(ClientError) as no_network:
        ecs.run_task(cluster=CLUSTER, taskDefinition=awsvpc, launchType="FARGATE")
    assert no_network.value.response["Error"]["Code"] == "InvalidParameterException"
    network = {
        "awsvpcConfiguration": {
            "subnets": ecs_state["subnets"],
            "securityGroups": [ecs_state["security_group"]],
        }
    }
    (in_vpc,) = run(ecs, awsvpc, networkConfiguration=network)
    assert in_vpc["attachments"][0]["type"] == "ElasticNetworkInterface"


def test_nopull_standalone_task_fails_to_start(ecs: Any) -> None:
    task_definition = register(ecs, "nopull", ("tests", "runner:nopull", True))
    (task,) = run(ecs, task_definition)
    (stopped,) = wait_status(ecs, [task["taskArn"]], "STOPPED")
    assert stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"].startswith("CannotPullContainerError: ")


def test_stop_task_on_a_service_task_is_user_initiated_and_replaced(ecs: Any) -> None:
    task_definition = register(ecs, "web", ("web", "nginx:1.25", True))
    ecs.create_service(
        cluster=CLUSTER, serviceName="web", taskDefinition=task_definition, desiredCount=1
    )
    (first,) = wait_until_sync(lambda: listed(ecs, serviceName="web"))
    wait_status(ecs, [first], "RUNNING")
    ecs.stop_task(cluster=CLUSTER, task=first, reason="bad host")
    (stopped,) = wait_status(ecs, [first], "STOPPED")
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("UserInitiated", "bad host")
    replacement = wait_until_sync(lambda: listed(ecs, serviceName="web") - {first})
    wait_status(ecs, list(replacement), "RUNNING")


def test_reset_clears_standalone_tasks(ecs: Any, emulator: Any) -> None:
    task_definition = register(ecs, "hanging", ("tests", "runner:testhang", True))
    (task,) = run(ecs, task_definition)
    wait_status(ecs, [task["taskArn"]], "RUNNING")
    emulator.admin.reset()
    assert listed(ecs) == set()
    gone = ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])
    assert gone["tasks"] == [] and gone["failures"][0]["reason"] == "MISSING"
    fresh = register(ecs, "after", ("tests", "runner:1.0", True))
    (after,) = run(ecs, fresh)
    wait_status(ecs, [after["taskArn"]], "RUNNING")


def test_throttling_and_call_counting_cover_task_operations(
    emulator: Any, ecs: Any, cloudwatch: Any
) -> None:
    task_definition = register(ecs, "tests", ("tests", "runner:1.0", True))
    (task,) = run(ecs, task_definition)
    emulator.admin.reset_calls()
    impatient = boto3.client(
        "ecs",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    emulator.admin.settings(throttle_rate=1.0)
    try:
        for call in (
            lambda: impatient.run_task(cluster=CLUSTER, taskDefinition=task_definition),
            lambda: impatient.stop_task(cluster=CLUSTER, task=task["taskArn"]),
            lambda: impatient.list_tasks(cluster=CLUSTER),
        ):
            with pytest.raises(ClientError) as throttled:
                call()
            assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
        cloudwatch.list_metrics()  # other services are never throttled
    finally:
        emulator.admin.settings(throttle_rate=0.0)
    ecs.stop_task(cluster=CLUSTER, task=task["taskArn"])
    calls = emulator.admin.calls()
    assert calls["throttled"] == 3
    assert calls["by_operation"] == {"RunTask": 1, "StopTask": 2, "ListTasks": 1}


def test_cloudwatch_metrics_round_trip(cloudwatch: Any) -> None:
    now = datetime.now(UTC)
    dimensions = [{"Name": "ServiceName", "Value": "myappCanary"}]
    cloudwatch.put_metric_data(
        Namespace="EcsCanary/Test",
        MetricData=[
            {
                "MetricName": "HTTPCode_5XX",
                "Dimensions": dimensions,
                "Timestamp": now - timedelta(seconds=age),
                "Value": value,
                "Unit": "Count",
            }
            for age, value in ((0, 3.0), (1, 4.0))
        ]
        + [
            {
                "MetricName": "HTTPCode_5XX",
                "Dimensions": [{"Name": "ServiceName", "Value": "myapp"}],
                "Timestamp": now,
                "Value": 100.0,
                "Unit": "Count",
            }
        ],
    )
    result = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "EcsCanary/Test",
                        "MetricName": "HTTPCode_5XX",
                        "Dimensions": dimensions,
                    },
                    "Period": 300,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )
    (series,) = result["MetricDataResults"]
    assert series["Id"] == "errors" and series["StatusCode"] == "Complete"
    assert sum(series["Values"]) == 7.0


def test_moto_names_used_for_standalone_tasks_exist() -> None:
    """Standalone tasks read these moto TaskDefinition attributes and build a moto Container
    per container definition (see ecs_emulator/moto_tasks.py)."""
    backend = EC2ContainerServiceBackend(REGION, "123456789012")
    definition = backend.register_task_definition(
        "f", [{"name": "a", "image": "x:1", "memory": 128}]
    )
    for name in moto_internals.TASK_DEFINITION_ATTRIBUTES:
        assert hasattr(definition, name), name
    task_init = inspect.signature(moto_internals._EmulatedTask.__init__)
    assert "overrides" in task_init.parameters
    assert "capacity_provider_name" in task_init.parameters
