"""ECS's Service Deployments API on the emulator: ListServiceDeployments,
DescribeServiceDeployments and DescribeServiceRevisions, through boto3 and real HTTP only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import (
    CLUSTER,
    create_service,
    describe,
    emulator_client,
    register,
    wait_stable,
    wait_until_sync,
)

BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


@pytest.fixture(autouse=True)
def unhurried_tasks(emulator: Any, ecs_state: dict[str, Any]) -> None:
    """Tasks take a second to start, so a deployment is surely IN_PROGRESS (or rolling back)
    when a test looks; the next test's `ecs_state` puts the usual speed back."""
    emulator.admin.settings(task_start_seconds=1.0)


def listed(ecs: Any, service: str, **filters: Any) -> list[dict[str, Any]]:
    return ecs.list_service_deployments(cluster=CLUSTER, service=service, **filters)[
        "serviceDeployments"
    ]


def described(ecs: Any, arn: str) -> dict[str, Any]:
    (deployment,) = ecs.describe_service_deployments(serviceDeploymentArns=[arn])[
        "serviceDeployments"
    ]
    return deployment


def status_of(ecs: Any, arn: str, status: str) -> dict[str, Any] | None:
    deployment = described(ecs, arn)
    return deployment if deployment["status"] == status else None


def test_create_and_update_each_get_a_successful_service_deployment(ecs: Any) -> None:
    first = register(ecs)
    created = create_service(ecs, "app", first, 2)
    created_id = created["deployments"][0]["id"]
    (creating,) = listed(ecs, "app")
    assert creating["status"] == "IN_PROGRESS"
    assert created["currentServiceDeployment"] == creating["serviceDeploymentArn"]
    assert creating["serviceDeploymentArn"].startswith(
        "arn:aws:ecs:us-east-1:123456789012:service-deployment/ecs-canary/app/"
    )
    wait_stable(ecs, "app")

    second = register(ecs, image="nginx:1.26")
    updated = ecs.update_service(cluster=CLUSTER, service="app", taskDefinition=second)["service"]
    updated_id = updated["deployments"][0]["id"]
    newest, oldest = listed(ecs, "app")  # newest first
    assert (newest["status"], oldest["status"]) == ("IN_PROGRESS", "SUCCESSFUL")
    assert describe(ecs, "app")["currentServiceDeployment"] == newest["serviceDeploymentArn"]
    done = wait_until_sync(lambda: status_of(ecs, newest["serviceDeploymentArn"], "SUCCESSFUL"))

    revision = "arn:aws:ecs:us-east-1:123456789012:service-revision/ecs-canary/app/"
    assert oldest["targetServiceRevisionArn"] == revision + created_id.split("/")[1]
    assert done["targetServiceRevision"] == {
        "arn": revision + updated_id.split("/")[1],
        "requestedTaskCount": 2,
        "runningTaskCount": 2,
        "pendingTaskCount": 0,
    }
    assert [s["arn"] for s in done["sourceServiceRevisions"]] == [
        oldest["targetServiceRevisionArn"]
    ]
    assert done["createdAt"] == done["startedAt"] <= done["finishedAt"]
    assert "stoppedAt" not in done and "rollback" not in done
    assert done["deploymentCircuitBreaker"]["status"] == "DISABLED"
    assert done["deploymentConfiguration"]["minimumHealthyPercent"] == 100

    revisions = ecs.describe_service_revisions(
        serviceRevisionArns=[oldest["targetServiceRevisionArn"], revision + "404"]
    )
    (old_revision,) = revisions["serviceRevisions"]
    assert old_revision["taskDefinition"] == first
    assert old_revision["containerImages"] == [{"containerName": "web", "image": "nginx:1.25"}]
    assert revisions["failures"] == [{"arn": revision + "404", "reason": "MISSING"}]
    current = describe(ecs, "app")["currentServiceRevisions"]
    assert [r["arn"] for r in current] == [done["targetServiceRevision"]["arn"]]


def test_a_deployment_replaced_before_it_finished_is_stopped(ecs: Any) -> None:
    create_service(ecs, "busy", register(ecs), 1)
    wait_stable(ecs, "busy")
    started = datetime.now(UTC)
    for image in ("nginx:1.26", "nginx:1.27"):
        ecs.update_service(
            cluster=CLUSTER, service="busy", taskDefinition=register(ecs, image=image)
        )
    latest, replaced, first = listed(ecs, "busy")

    assert replaced["status"] == "STOPPED" and replaced["finishedAt"]
    assert (
        replaced["statusReason"] == "A newer service deployment started before this one finished."
    )
    assert described(ecs, replaced["serviceDeploymentArn"])["stoppedAt"]
    assert first["status"] == "SUCCESSFUL"
    wait_until_sync(lambda: status_of(ecs, latest["serviceDeploymentArn"], "SUCCESSFUL"))

    stopped = listed(ecs, "busy", status=["STOPPED"])
    assert [d["serviceDeploymentArn"] for d in stopped] == [replaced["serviceDeploymentArn"]]
    recent = listed(ecs, "busy", createdAt={"after": started - timedelta(milliseconds=1)})
    assert len(recent) == 2
    older = listed(ecs, "busy", createdAt={"before": started})
    assert [d["serviceDeploymentArn"] for d in older] == [first["serviceDeploymentArn"]]
    page = ecs.list_service_deployments(cluster=CLUSTER, service="busy", maxResults=2)
    rest = ecs.list_service_deployments(
        cluster=CLUSTER, service="busy", maxResults=2, nextToken=page["nextToken"]
    )
    assert len(page["serviceDeployments"]) == 2 and "nextToken" not in rest
    paged = page["serviceDeployments"] + rest["serviceDeployments"]
    assert [d["serviceDeploymentArn"] for d in paged] == [
        d["serviceDeploymentArn"] for d in listed(ecs, "busy")
    ]


def test_a_circuit_breaker_rollback_ends_rollback_successful(ecs: Any) -> None:
    good = register(ecs)
    create_service(ecs, "rb", good, 2, deploymentConfiguration=BREAKER)
    wait_stable(ecs, "rb")
    ecs.update_service(
        cluster=CLUSTER, service="rb", taskDefinition=register(ecs, image="nginx:crash")
    )
    failing, completed = listed(ecs, "rb")

    rolling = wait_until_sync(
        lambda: status_of(ecs, failing["serviceDeploymentArn"], "ROLLBACK_IN_PROGRESS"), timeout=20
    )
    assert rolling["statusReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert rolling["rollback"]["serviceRevisionArn"] == completed["targetServiceRevisionArn"]
    assert rolling["rollback"]["reason"].startswith("ECS deployment circuit breaker: rolling back")
    assert rolling["rollback"]["startedAt"]
    breaker = rolling["deploymentCircuitBreaker"]
    assert breaker["status"] == "TRIGGERED" and breaker["failureCount"] >= breaker["threshold"] == 3

    done = wait_until_sync(
        lambda: status_of(ecs, failing["serviceDeploymentArn"], "ROLLBACK_SUCCESSFUL"), timeout=20
    )
    assert done["finishedAt"] and "stoppedAt" not in done
    assert (
        listed(ecs, "rb", status=["ROLLBACK_SUCCESSFUL"])[0]["serviceDeploymentArn"]
        == (failing["serviceDeploymentArn"])
    )
    assert wait_stable(ecs, "rb")["taskDefinition"] == good
    assert len(listed(ecs, "rb")) == 2  # a rollback is not a service deployment of its own


def test_a_circuit_breaker_without_rollback_stops_the_deployment(ecs: Any) -> None:
    create_service(
        ecs,
        "cb",
        register(ecs),
        2,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": False}},
    )
    wait_stable(ecs, "cb")
    ecs.update_service(
        cluster=CLUSTER, service="cb", taskDefinition=register(ecs, image="nginx:nopull")
    )
    failing = listed(ecs, "cb")[0]
    stopped = wait_until_sync(
        lambda: status_of(ecs, failing["serviceDeploymentArn"], "STOPPED"), timeout=20
    )
    assert stopped["statusReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert stopped["stoppedAt"] and "rollback" not in stopped
    assert stopped["deploymentCircuitBreaker"]["status"] == "TRIGGERED"


def test_errors_throttling_and_counting_apply_as_to_every_ecs_call(ecs: Any, emulator: Any) -> None:
    create_service(ecs, "known", register(ecs), 0)
    with pytest.raises(ClientError) as missing:
        listed(ecs, "unknown")
    assert missing.value.response["Error"]["Code"] == "ServiceNotFoundException"
    with pytest.raises(ClientError) as bad_page:
        listed(ecs, "known", maxResults=500)
    assert bad_page.value.response["Error"]["Code"] == "InvalidParameterException"
    arn = "arn:aws:ecs:us-east-1:123456789012:service-deployment/ecs-canary/known/nope"
    assert ecs.describe_service_deployments(serviceDeploymentArns=[arn])["failures"] == [
        {"arn": arn, "reason": "MISSING"}
    ]

    emulator.admin.reset_calls()
    listed(ecs, "known")
    ecs.describe_service_deployments(serviceDeploymentArns=[arn])
    counted = emulator.admin.calls()["by_operation"]
    assert (counted["ListServiceDeployments"], counted["DescribeServiceDeployments"]) == (1, 1)
    impatient = emulator_client(emulator.url, retries={"max_attempts": 1, "mode": "standard"})
    emulator.admin.settings(throttle_rate=1.0)
    try:
        with pytest.raises(ClientError) as throttled:
            impatient.list_service_deployments(cluster=CLUSTER, service="known")
    finally:
        emulator.admin.settings(throttle_rate=0.0)
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
