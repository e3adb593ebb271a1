"""The emulator's ECS behaviour, through boto3 and real HTTP only."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    CLUSTER,
    FAST_WAITER,
    START_SECONDS,
    create_service,
    describe,
    emulator_client,
    is_stable,
    messages,
    register,
    tasks_of,
    wait_stable,
    wait_until_sync,
)


def _counts(service: dict[str, Any]) -> tuple[int, int]:
    return service["pendingCount"], service["runningCount"]


def test_counts_move_from_pending_to_running_and_waiters_succeed(ecs: Any) -> None:
    task_definition = register(ecs)
    created = create_service(ecs, "web", task_definition, 2)
    deployment_id = created["deployments"][0]["id"]
    assert deployment_id.startswith("ecs-svc/") and deployment_id[8:].isdigit()
    assert created["deploymentConfiguration"]["minimumHealthyPercent"] == 100

    # Both counts from one DescribeServices: on a busy machine, the tasks may be running by the
    # next one.
    wait_until_sync(lambda: _counts(describe(ecs, "web")) == (2, 0))
    ecs.get_waiter("services_stable").wait(
        cluster=CLUSTER, services=["web"], WaiterConfig=FAST_WAITER
    )
    service = describe(ecs, "web")
    assert (service["runningCount"], service["pendingCount"]) == (2, 0)
    (deployment,) = service["deployments"]
    assert deployment["rolloutState"] == "COMPLETED"
    assert (deployment["runningCount"], deployment["failedTasks"]) == (2, 0)

    arns = ecs.list_tasks(cluster=CLUSTER, serviceName="web")["taskArns"]
    ecs.get_waiter("tasks_running").wait(cluster=CLUSTER, tasks=arns, WaiterConfig=FAST_WAITER)
    for task in ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]:
        assert task["lastStatus"] == task["desiredStatus"] == "RUNNING"
        assert task["startedBy"] == deployment_id
        assert task["group"] == "service:web"
        assert task["taskDefinitionArn"] == task_definition
        assert task["startedAt"]

    task_ids = sorted(arn.split("/")[-1] for arn in arns)
    events = messages(service)
    assert events[0] == "(service web) has reached a steady state."
    assert events[1] == f"(service web) (deployment {deployment_id}) deployment completed."
    started = events[2]
    assert started.startswith("(service web) has started 2 tasks: ")
    assert all(f"(task {task_id})" in started for task_id in task_ids)
    assert all(event["id"] and event["createdAt"] for event in service["events"])


@pytest.mark.parametrize(("minimum", "maximum"), [(50, 200), (100, 150)])
def test_rolling_update_respects_minimum_healthy_and_maximum_percent(
    ecs: Any, minimum: int, maximum: int
) -> None:
    desired = 4
    first = register(ecs, image="nginx:1.25")
    config = {"minimumHealthyPercent": minimum, "maximumPercent": maximum}
    create_service(ecs, "roll", first, desired, deploymentConfiguration=config)
    wait_stable(ecs, "roll")

    second = register(ecs, image="nginx:1.26")
    updated = ecs.update_service(cluster=CLUSTER, service="roll", taskDefinition=second)["service"]
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    floor_healthy = math.ceil(desired * minimum / 100)
    ceiling = math.floor(desired * maximum / 100)
    samples = 0
    while True:
        service = describe(ecs, "roll")
        running = sum(d["runningCount"] for d in service["deployments"])
        total = sum(d["runningCount"] + d["pendingCount"] for d in service["deployments"])
        assert running >= floor_healthy, service["deployments"]
        assert total <= ceiling, service["deployments"]
        samples += 1
        if is_stable(service) and service["deployments"][0]["taskDefinition"] == second:
            break
        assert samples < 1000, "rolling update did not converge"
        time.sleep(0.02)

    (deployment,) = service["deployments"]
    assert deployment["rolloutState"] == "COMPLETED"
    assert service["taskDefinition"] == second
    running = tasks_of(ecs, "roll", desiredStatus="RUNNING")
    assert {t["taskDefinitionArn"] for t in running} == {second}
    stopped = wait_until_sync(
        lambda: [
            t
            for t in tasks_of(ecs, "roll", desiredStatus="STOPPED")
            if t["lastStatus"] == "STOPPED"
        ]
    )
    assert all(t["taskDefinitionArn"] == first and t["stoppedAt"] for t in stopped)
    assert any("has stopped" in m and "running tasks" in m for m in messages(service))


def test_scaling_and_no_op_updates_keep_the_primary_deployment(ecs: Any) -> None:
    task_definition = register(ecs)
    create_service(ecs, "scale", task_definition, 1)
    deployment_id = wait_stable(ecs, "scale")["deployments"][0]["id"]

    same = ecs.update_service(
        cluster=CLUSTER, service="scale", taskDefinition=task_definition, forceNewDeployment=False
    )["service"]
    assert [d["id"] for d in same["deployments"]] == [deployment_id]

    for desired in (3, 1):
        scaled = ecs.update_service(cluster=CLUSTER, service="scale", desiredCount=desired)
        assert [d["id"] for d in scaled["service"]["deployments"]] == [deployment_id]
        service = wait_until_sync(
            lambda d=desired: (
                (s := describe(ecs, "scale"))["runningCount"] == d and s["pendingCount"] == 0 and s
            )
        )
        assert service["deployments"][0]["id"] == deployment_id
        assert len(tasks_of(ecs, "scale", desiredStatus="RUNNING")) == desired

    forced = ecs.update_service(cluster=CLUSTER, service="scale", forceNewDeployment=True)
    assert len(forced["service"]["deployments"]) == 2


def test_update_by_revision_keeps_full_task_definition_arn(ecs: Any) -> None:
    register(ecs, family="fam")
    create_service(ecs, "arn", "fam", 1)
    second = register(ecs, family="fam", image="nginx:1.26")
    updated = ecs.update_service(cluster=CLUSTER, service="arn", taskDefinition="fam:2")["service"]
    assert updated["taskDefinition"] == second
    assert updated["deployments"][0]["taskDefinition"] == second
    assert describe(ecs, "arn")["taskDefinition"] == second


def test_delete_drains_then_inactive_and_the_name_is_reusable(ecs: Any) -> None:
    task_definition = register(ecs)
    first_arn = create_service(ecs, "gone", task_definition, 2)["serviceArn"]
    wait_stable(ecs, "gone")

    deleted = ecs.delete_service(cluster=CLUSTER, service="gone", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    with pytest.raises(ClientError) as refused:
        create_service(ecs, "gone", task_definition, 1)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Draining" in refused.value.response["Error"]["Message"]

    ecs.get_waiter("services_inactive").wait(
        cluster=CLUSTER, services=["gone"], WaiterConfig=FAST_WAITER
    )
    inactive = describe(ecs, "gone")
    assert (inactive["status"], inactive["runningCount"]) == ("INACTIVE", 0)
    assert all(t["lastStatus"] == "STOPPED" for t in tasks_of(ecs, "gone"))

    recreated = create_service(ecs, "gone", task_definition, 1)
    assert recreated["status"] == "ACTIVE"
    assert recreated["serviceArn"] == first_arn
    assert wait_stable(ecs, "gone")["runningCount"] == 1


def _cluster_counts(ecs: Any) -> tuple[int, int]:
    (cluster,) = ecs.describe_clusters(clusters=[CLUSTER])["clusters"]
    return cluster["runningTasksCount"], cluster["pendingTasksCount"]


def test_describe_clusters_counts_the_tasks_the_scheduler_moved(ecs: Any) -> None:
    """The emulator counts a cluster's tasks when DescribeClusters reads them, not in every
    tick: the counts follow the tasks as they start and stop."""
    task_definition = register(ecs)
    create_service(ecs, "counted", task_definition, 2)
    wait_stable(ecs, "counted")
    assert _cluster_counts(ecs) == (2, 0)
    ecs.update_service(cluster=CLUSTER, service="counted", desiredCount=3)
    wait_stable(ecs, "counted")
    assert _cluster_counts(ecs) == (3, 0)
    ecs.delete_service(cluster=CLUSTER, service="counted", force=True)
    ecs.get_waiter("services_inactive").wait(
        cluster=CLUSTER, services=["counted"], WaiterConfig=FAST_WAITER
    )
    assert _cluster_counts(ecs) == (0, 0)


def test_nopull_tasks_stop_before_running_and_are_replaced(ecs: Any) -> None:
    task_definition = register(ecs, image="nginx:nopull")
    create_service(ecs, "nopull", task_definition, 2)
    service = wait_until_sync(
        lambda: (s := describe(ecs, "nopull"))["deployments"][0]["failedTasks"] >= 4 and s
    )
    assert service["runningCount"] == 0
    stopped = tasks_of(ecs, "nopull", desiredStatus="STOPPED")
    assert stopped
    for task in stopped:
        assert task["stoppedReason"].startswith("CannotPullContainerError: ")
        assert "docker.io/library/nginx:nopull" in task["stoppedReason"]
        assert "startedAt" not in task
    started = [m for m in messages(service) if "has started" in m]
    assert len(started) >= 2, "ECS keeps replacing tasks that fail to start"


def test_crash_tasks_run_then_exit(ecs: Any) -> None:
    task_definition = register(ecs, image="nginx:crash-loop")
    create_service(ecs, "crash", task_definition, 1)
    wait_until_sync(lambda: describe(ecs, "crash")["runningCount"] == 1)
    service = wait_until_sync(
        lambda: (s := describe(ecs, "crash"))["deployments"][0]["failedTasks"] >= 1 and s
    )
    crashed = wait_until_sync(lambda: tasks_of(ecs, "crash", desiredStatus="STOPPED"))
    assert crashed[0]["stoppedReason"] == "Essential container in task exited"
    assert crashed[0]["startedAt"]
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"


def test_slow_tasks_take_longer_than_normal_ones(ecs: Any, emulator: Any) -> None:
    emulator.admin.settings(task_start_seconds=0.1)
    create_service(ecs, "normal", register(ecs, family="normal"), 1)
    create_service(ecs, "slow", register(ecs, family="slow", image="nginx:slow"), 1)
    wait_stable(ecs, "normal")
    time.sleep(2 * 0.1)  # twice the normal start delay has passed since "normal" ran
    (task,) = tasks_of(ecs, "slow")
    assert task["lastStatus"] in ("PROVISIONING", "PENDING")
    assert wait_stable(ecs, "slow")["runningCount"] == 1


def test_circuit_breaker_without_rollback_marks_failed_and_stops_launching(ecs: Any) -> None:
    good = register(ecs)
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}
    create_service(ecs, "cb", good, 2, deploymentConfiguration=breaker)
    wait_stable(ecs, "cb")
    bad = register(ecs, image="nginx:nopull")
    ecs.update_service(cluster=CLUSTER, service="cb", taskDefinition=bad)

    service = wait_until_sync(
        lambda: (s := describe(ecs, "cb"))["deployments"][0]["rolloutState"] == "FAILED" and s
    )
    failed, old = service["deployments"]
    assert failed["failedTasks"] >= 3 and failed["taskDefinition"] == bad
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert old["taskDefinition"] == good and old["runningCount"] == 2
    expected = f"(service cb) deployment {failed['id']} deployment failed: tasks failed to start."
    assert expected in messages(service)
    wait_until_sync(lambda: describe(ecs, "cb")["deployments"][0]["pendingCount"] == 0)
    time.sleep(3 * START_SECONDS)  # no new launches once FAILED
    later = describe(ecs, "cb")["deployments"][0]
    assert (later["pendingCount"], later["failedTasks"]) == (0, failed["failedTasks"])


def test_circuit_breaker_rolls_back_to_the_last_completed_deployment(ecs: Any) -> None:
    good = register(ecs)
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    create_service(ecs, "rb", good, 2, deploymentConfiguration=breaker)
    completed_id = wait_stable(ecs, "rb")["deployments"][0]["id"]
    bad = register(ecs, image="nginx:crash")
    failing_id = ecs.update_service(cluster=CLUSTER, service="rb", taskDefinition=bad)["service"][
        "deployments"
    ][0]["id"]

    service = wait_until_sync(
        lambda: (
            (s := describe(ecs, "rb"))["deployments"][0]["id"] not in (failing_id,)
            and is_stable(s)
            and s
        ),
        timeout=20,
    )
    (rollback,) = service["deployments"]
    assert rollback["taskDefinition"] == good and rollback["rolloutState"] == "COMPLETED"
    assert rollback["id"] != completed_id
    assert service["taskDefinition"] == good
    events = messages(service)
    failed = f"(service rb) (deployment {failing_id}) deployment failed: tasks failed to start."
    rolling = f"(service rb) rolling back to deployment {completed_id}."
    assert failed in events and rolling in events
    assert events.index(rolling) < events.index(failed)  # newest first


def test_injected_fault_hits_only_the_next_deployment_of_that_service(
    ecs: Any, emulator: Any
) -> None:
    good = register(ecs)
    create_service(ecs, "myapp", good, 1)
    wait_stable(ecs, "myapp")
    emulator.admin.inject_fault("myapp", "nopull")
    create_service(ecs, "myappCanary", good, 1)
    assert wait_stable(ecs, "myappCanary")["deployments"][0]["failedTasks"] == 0

    ecs.update_service(cluster=CLUSTER, service="myapp", forceNewDeployment=True)
    service = wait_until_sync(
        lambda: (s := describe(ecs, "myapp"))["deployments"][0]["failedTasks"] >= 1 and s
    )
    reasons = {t.get("stoppedReason", "") for t in tasks_of(ecs, "myapp", desiredStatus="STOPPED")}
    assert any(r.startswith("CannotPullContainerError") for r in reasons)
    assert service["deployments"][1]["runningCount"] == 1  # the old tasks keep serving

    ecs.update_service(cluster=CLUSTER, service="myapp", forceNewDeployment=True)
    assert wait_stable(ecs, "myapp")["deployments"][0]["failedTasks"] == 0


def test_list_tasks_filters_by_service_and_status_and_paginates(ecs: Any, emulator: Any) -> None:
    emulator.admin.settings(task_start_seconds=0.05)
    task_definition = register(ecs)
    create_service(ecs, "big", task_definition, 105)
    create_service(ecs, "small", task_definition, 2)
    wait_stable(ecs, "big", timeout=30)
    wait_stable(ecs, "small")

    first = ecs.list_tasks(cluster=CLUSTER, serviceName="big")
    assert len(first["taskArns"]) == 100 and first["nextToken"]
    pages = ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, serviceName="big")
    big = [arn for page in pages for arn in page["taskArns"]]
    assert len(big) == len(set(big)) == 105
    small = ecs.list_tasks(cluster=CLUSTER, serviceName="small")["taskArns"]
    assert len(small) == 2 and not set(small) & set(big)

    ecs.update_service(cluster=CLUSTER, service="small", desiredCount=0)
    wait_until_sync(
        lambda: (
            len(
                ecs.list_tasks(cluster=CLUSTER, serviceName="small", desiredStatus="STOPPED")[
                    "taskArns"
                ]
            )
            == 2
        )
    )
    assert (
        ecs.list_tasks(cluster=CLUSTER, serviceName="small", desiredStatus="RUNNING")["taskArns"]
        == []
    )


def test_task_definition_and_service_tags_round_trip(ecs: Any) -> None:
    tags = [{"key": "team", "value": "payments"}]
    task_definition = register(ecs, tags=tags)
    described = ecs.describe_task_definition(taskDefinition=task_definition, include=["TAGS"])
    assert described["tags"] == tags
    service = create_service(ecs, "tagged", task_definition, 0, tags=tags)
    assert ecs.list_tags_for_resource(resourceArn=service["serviceArn"])["tags"] == tags


def test_awsvpc_service_uses_the_seeded_network(ecs: Any, ecs_state: dict[str, Any]) -> None:
    task_definition = register(
        ecs, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512"
    )
    network = {
        "awsvpcConfiguration": {
            "subnets": ecs_state["subnets"],
            "securityGroups": [ecs_state["security_group"]],
        }
    }
    create_service(
        ecs, "vpc", task_definition, 1, launchType="FARGATE", networkConfiguration=network
    )
    assert wait_stable(ecs, "vpc")["runningCount"] == 1
    (task,) = tasks_of(ecs, "vpc")
    assert task["attachments"][0]["type"] == "ElasticNetworkInterface"


def test_services_in_other_regions_are_scheduled_too(
    emulator: Any, ecs_state: dict[str, Any]
) -> None:
    ecs = emulator_client(emulator.url, region="eu-west-1")
    ecs.create_cluster(clusterName="europe")
    task_definition = register(ecs)
    assert ":eu-west-1:" in task_definition
    create_service(ecs, "far", task_definition, 2, cluster="europe")
    assert wait_stable(ecs, "far", cluster="europe")["runningCount"] == 2


def test_task_ids_are_32_hex_characters_as_in_ecs(ecs: Any, ecs_state: dict[str, Any]) -> None:
    task_definition = register(ecs)
    create_service(ecs, "ids", task_definition, 2)
    ran = ecs.run_task(cluster=CLUSTER, taskDefinition=task_definition, launchType="EC2")["tasks"]
    started = wait_until_sync(
        lambda: len(a := ecs.list_tasks(cluster=CLUSTER, serviceName="ids")["taskArns"]) == 2 and a
    )
    arns = started + [ran[0]["taskArn"]]
    prefix = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/"
    for arn in arns:
        assert arn.startswith(prefix) and re.fullmatch(r"[0-9a-f]{32}", arn[len(prefix) :]), arn
    task_id = arns[0].split("/")[-1]
    (by_id,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_id])["tasks"]
    assert by_id["taskArn"] == arns[0]


@pytest.mark.parametrize(
    "extra",
    [
        {"deploymentController": {"type": "CODE_DEPLOY"}},
        {"deploymentController": {"type": "EXTERNAL"}},
        {"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}},
        {
            "deploymentConfiguration": {
                "strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2},
            }
        },
    ],
)
def test_other_controllers_and_strategies_are_stored_but_not_scheduled(
    ecs: Any, extra: dict[str, Any]
) -> None:
    created = create_service(ecs, "other", register(ecs), 2, **extra)
    controller = extra.get("deploymentController", {"type": "ECS"})
    wanted = extra.get("deploymentConfiguration", {})
    for service in (created, describe(ecs, "other")):
        assert service["deploymentController"] == controller
        assert service["deploymentConfiguration"].items() >= wanted.items()
    ecs.update_service(cluster=CLUSTER, service="other", desiredCount=3)
    create_service(ecs, "rolling", register(ecs, family="rolling"), 1)
    wait_stable(ecs, "rolling")  # the scheduler had time to start the other one's tasks
    service = describe(ecs, "other")
    assert (service["deployments"], service["runningCount"], service["pendingCount"]) == ([], 0, 0)
    assert ecs.list_tasks(cluster=CLUSTER, serviceName="other")["taskArns"] == []
    assert (
        ecs.list_service_deployments(cluster=CLUSTER, service="other")["serviceDeployments"] == []
    )
    ecs.delete_service(cluster=CLUSTER, service="other", force=True)
    wait_until_sync(lambda: describe(ecs, "other")["status"] == "INACTIVE")
