"""Services behind load balancers: target registration, health, draining, the `unhealthy` tag,
through boto3 (ECS and ELBv2) and real HTTP only."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    CLUSTER,
    create_service,
    describe,
    messages,
    register,
    tasks_of,
    wait_stable,
    wait_until_sync,
)
from tests.helpers.ecs import awsvpc_network as network
from tests.helpers.ecs import target_group, target_states, web_definition
from tests.helpers.load_balancers import fast_health_checks as health_checks_at

HEALTH_CHECK_SECONDS = 0.8  # leaves time to see `initial` on a busy machine
DRAIN_SECONDS = 1


@pytest.fixture(autouse=True)
def fast_health_checks(emulator: Any, ecs_state: dict[str, Any]) -> Iterator[None]:
    """Health checks at this module's speed (see HEALTH_CHECK_SECONDS)."""
    with health_checks_at(emulator, HEALTH_CHECK_SECONDS):
        yield


def behind(arn: str, port: int = 80) -> list[dict[str, Any]]:
    return [{"targetGroupArn": arn, "containerName": "web", "containerPort": port}]


def addresses(ecs: Any, service: str) -> set[str]:
    """The ENI addresses of the service's RUNNING-desired tasks: their target ids."""
    return {
        detail["value"]
        for task in tasks_of(ecs, service)
        for attachment in task["attachments"]
        for detail in attachment["details"]
        if detail["name"] == "privateIPv4Address"
    }


def test_targets_go_initial_then_healthy_and_a_rolling_update_drains_the_old_ones(
    ecs: Any, elbv2: Any, ecs_state: dict[str, Any]
) -> None:
    arn = target_group(elbv2, ecs_state, deregistration_delay=DRAIN_SECONDS)
    first = web_definition(ecs)
    created = create_service(
        ecs, "web", first, 2, loadBalancers=behind(arn), networkConfiguration=network(ecs_state)
    )
    assert created["loadBalancers"] == behind(arn)

    initial = wait_until_sync(lambda: (s := target_states(elbv2, arn)) and s)
    assert set(initial.values()) == {"initial"} and set(initial) == addresses(ecs, "web")
    service = describe(ecs, "web")
    assert service["runningCount"] == 2  # RUNNING, but not yet healthy behind the ELB
    assert service["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert {(t["Target"]["Port"], t["TargetHealth"]["Reason"]) for t in health} == {
        (80, "Elb.RegistrationInProgress")
    }

    service = wait_until_sync(
        lambda: (s := describe(ecs, "web"))["deployments"][0]["rolloutState"] == "COMPLETED" and s
    )
    assert set(target_states(elbv2, arn).values()) == {"healthy"}
    events = messages(service)
    assert f"(service web) registered 2 targets in (target-group {arn})" in events
    assert events[0] == "(service web) has reached a steady state."
    old = addresses(ecs, "web")

    ecs.update_service(
        cluster=CLUSTER, service="web", taskDefinition=web_definition(ecs, "nginx:1.26")
    )
    saw_draining = False
    while True:  # minimumHealthyPercent 100: two healthy targets throughout
        service = describe(ecs, "web")  # first: targets read afterwards are no less healthy
        states = target_states(elbv2, arn)
        assert sum(state == "healthy" for state in states.values()) >= 2, states
        saw_draining |= any(states.get(address) == "draining" for address in old)
        new_targets = [states.get(a) for a in addresses(ecs, "web") - old]
        if service["deployments"][0]["rolloutState"] == "COMPLETED":
            assert new_targets == ["healthy", "healthy"]
        if not old & set(states) and len(service["deployments"]) == 1:
            break
        time.sleep(0.05)

    assert saw_draining
    assert set(target_states(elbv2, arn).values()) == {"healthy"}
    stopped = wait_until_sync(  # the stop delay follows the deregistration delay
        lambda: (
            (t := tasks_of(ecs, "web", desiredStatus="STOPPED"))
            and {task["lastStatus"] for task in t} == {"STOPPED"}
            and t
        )
    )
    assert len(stopped) == 2
    events = messages(describe(ecs, "web"))
    drained = [
        m
        for m in events
        if re.fullmatch(r"\(service web\) has begun draining connections on \d tasks\.", m)
    ]
    deregistered = [
        int(m.split()[3])
        for m in events
        if m.startswith("(service web) deregistered ") and m.endswith(f"(target-group {arn})")
    ]
    assert drained and sum(deregistered) == 2


def test_a_stopped_task_stays_deactivating_while_its_target_drains(
    ecs: Any, elbv2: Any, ecs_state: dict[str, Any]
) -> None:
    arn = target_group(elbv2, ecs_state, deregistration_delay=DRAIN_SECONDS)
    create_service(
        ecs,
        "one",
        web_definition(ecs),
        1,
        loadBalancers=behind(arn),
        networkConfiguration=network(ecs_state),
    )
    wait_until_sync(lambda: describe(ecs, "one")["deployments"][0]["rolloutState"] == "COMPLETED")
    (task,) = tasks_of(ecs, "one")
    (address,) = addresses(ecs, "one")

    ecs.stop_task(cluster=CLUSTER, task=task["taskArn"], reason="rehearsal")
    (stopping,) = ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"]
    assert (stopping["desiredStatus"], stopping["lastStatus"]) == ("STOPPED", "DEACTIVATING")
    assert target_states(elbv2, arn)[address] == "draining"
    wait_until_sync(lambda: address not in target_states(elbv2, arn), timeout=10)
    stopped = wait_until_sync(
        lambda: (
            (t := ecs.describe_tasks(cluster=CLUSTER, tasks=[task["taskArn"]])["tasks"][0])[
                "lastStatus"
            ]
            == "STOPPED"
            and t
        )
    )
    assert stopped["stoppedAt"] - stopped["stoppingAt"] >= timedelta(seconds=DRAIN_SECONDS)
    replaced = wait_until_sync(
        lambda: (s := target_states(elbv2, arn)) and set(s.values()) == {"healthy"} and s
    )
    assert address not in replaced

    ecs.delete_service(cluster=CLUSTER, service="one", force=True)
    assert describe(ecs, "one")["status"] == "DRAINING"
    wait_until_sync(lambda: describe(ecs, "one")["status"] == "INACTIVE", timeout=10)
    assert target_states(elbv2, arn) == {}


def test_unhealthy_tasks_are_replaced_then_the_circuit_breaker_rolls_back(
    ecs: Any, elbv2: Any, ecs_state: dict[str, Any]
) -> None:
    arn = target_group(elbv2, ecs_state)
    good = web_definition(ecs)
    breaker = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    create_service(
        ecs,
        "api",
        good,
        2,
        loadBalancers=behind(arn),
        networkConfiguration=network(ecs_state),
        deploymentConfiguration=breaker,
    )
    completed_id = wait_until_sync(
        lambda: (
            (d := describe(ecs, "api")["deployments"][0])["rolloutState"] == "COMPLETED" and d["id"]
        )
    )
    bad = web_definition(ecs, "nginx:unhealthy-500")
    failing_id = ecs.update_service(cluster=CLUSTER, service="api", taskDefinition=bad)["service"][
        "deployments"
    ][0]["id"]

    unhealthy = wait_until_sync(
        lambda: [
            t
            for t in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            if t["TargetHealth"]["State"] == "unhealthy"
        ]
    )
    assert unhealthy[0]["TargetHealth"]["Reason"] == "Target.FailedHealthChecks"
    service = wait_until_sync(
        lambda: (
            (s := describe(ecs, "api"))["deployments"][0]["id"] != failing_id
            and len(s["deployments"]) == 1
            and s["deployments"][0]["rolloutState"] == "COMPLETED"
            and s
        ),
        timeout=30,
    )
    assert service["taskDefinition"] == good
    failed = [
        t for t in tasks_of(ecs, "api", desiredStatus="STOPPED") if t["taskDefinitionArn"] == bad
    ]
    assert len(failed) >= 3  # the circuit breaker's threshold for 2 tasks
    assert {t["stoppedReason"] for t in failed} == {
        f"Task failed ELB health checks in (target-group {arn})"
    }
    assert all(t["stopCode"] == "ServiceSchedulerInitiated" for t in failed)
    events = messages(service)
    for task in failed:
        task_id = task["taskArn"].split("/")[-1]
        assert (
            f"(service api) (task {task_id}) (port 80) is unhealthy in (target-group {arn}) "
            "due to (reason Health checks failed)."
        ) in events
    assert (
        f"(service api) (deployment {failing_id}) deployment failed: tasks failed to start."
        in events
    )
    assert f"(service api) rolling back to deployment {completed_id}." in events
    assert set(target_states(elbv2, arn).values()) <= {"healthy", "draining"}


def test_unhealthy_tag_means_nothing_without_a_load_balancer(ecs: Any) -> None:
    create_service(ecs, "plain", register(ecs, image="nginx:unhealthy"), 1)
    service = wait_stable(ecs, "plain")
    assert service["deployments"][0]["rolloutState"] == "COMPLETED"
    assert service["deployments"][0]["failedTasks"] == 0


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no load balancer", "does not have an associated load balancer."),
        ("instance targets", "has target type instance, which is incompatible with the awsvpc"),
        ("unmapped port", "The container web did not have a container port 8080 defined."),
        ("unknown group", "Unable to assume role and validate the specified targetGroupArn."),
    ],
)
def test_load_balancers_ecs_would_refuse_are_refused(
    ecs: Any, elbv2: Any, ecs_state: dict[str, Any], case: str, message: str
) -> None:
    port = 80
    if case == "unmapped port":
        arn, port = target_group(elbv2, ecs_state), 8080
    elif case == "unknown group":
        arn = target_group(elbv2, ecs_state).rsplit("/", 1)[0] + "/0000000000000000"
    else:
        arn = elbv2.create_target_group(
            Name="lonely",
            Protocol="HTTP",
            Port=80,
            VpcId=ecs_state["vpc_id"],
            TargetType="instance" if case == "instance targets" else "ip",
        )["TargetGroups"][0]["TargetGroupArn"]
        if case == "instance targets":
            balancer = elbv2.create_load_balancer(Name="alb", Subnets=ecs_state["subnets"])
            elbv2.create_listener(
                LoadBalancerArn=balancer["LoadBalancers"][0]["LoadBalancerArn"],
                Protocol="HTTP",
                Port=80,
                DefaultActions=[{"Type": "forward", "TargetGroupArn": arn}],
            )
    with pytest.raises(ClientError) as refused:
        create_service(
            ecs,
            "refused",
            web_definition(ecs),
            1,
            loadBalancers=behind(arn, port),
            networkConfiguration=network(ecs_state),
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert message in refused.value.response["Error"]["Message"]
    assert describe(ecs, "refused") is None
