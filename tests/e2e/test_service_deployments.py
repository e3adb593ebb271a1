"""ECS's own records: a rollback by ECS's circuit breaker is named through the Service
Deployments API, and services ECS deploys some other way (CODE_DEPLOY or EXTERNAL controller,
a strategy other than ROLLING) are refused before anything changes."""

from __future__ import annotations

import pytest

from tests.helpers import (
    CLUSTER,
    assert_failed_at_once,
    describe,
    existing_service,
    failure_of,
    inventory,
    wait_for_stage,
)
from tests.helpers.load_balancers import existing_service_with

BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}


async def test_a_rollback_by_ecs_is_named_from_its_service_deployment(
    worker, requests, ecs, emulator, deploy
):
    """ECS's circuit breaker acts first (the run tolerates many failed tasks): the wait sees
    another revision primary, and ECS's record of the run's deployment says why."""
    old_arn = existing_service_with(ecs, requests, deploymentConfiguration=BREAKER)
    request = requests.raw(service_definition={"deploymentConfiguration": BREAKER})
    handle = await deploy({**request, "max_failed_tasks": 50})
    await wait_for_stage(handle, "verification", gate_open=True)
    emulator.admin.inject_fault("myapp", "crash", cluster=CLUSTER)  # the rolling deploy
    emulator.admin.reset_calls()
    await handle.signal("approve", {"by": "alice"})
    error, result = await failure_of(handle)
    calls = emulator.admin.calls()["by_operation"]

    service_deployments = ecs.list_service_deployments(cluster=CLUSTER, service="myapp")
    rolled_back = next(
        d for d in service_deployments["serviceDeployments"] if d["status"].startswith("ROLLBACK")
    )
    assert error.type == "DeploymentRolledBack" and result.outcome == "rolled_back"
    assert f"ECS rolled back service deployment {rolled_back['serviceDeploymentArn']}" in (
        error.message
    )
    assert "of service myapp (ROLLBACK_" in error.message
    assert calls.get("DescribeServiceDeployments", 0) + calls.get("ListServiceDeployments", 0) == 1
    main = describe(ecs, "myapp")
    assert (main["taskDefinition"], main["desiredCount"]) == (old_arn, 2)


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "CODE_DEPLOY deployment controller"),
        (
            {"deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1}},
            "BLUE_GREEN deployment strategy",
        ),
    ],
    ids=["code-deploy", "blue-green"],
)
async def test_a_service_ecs_deploys_another_way_is_refused_with_zero_changes(
    worker, requests, ecs, emulator, deploy, definition, named
):
    # ECS itself deploys such a service: it is created, never rolled by the emulator.
    raw = requests.raw(service_definition=definition)
    registered = ecs.register_task_definition(**raw["task_definition"])["taskDefinition"]
    ecs.create_service(
        cluster=CLUSTER,
        serviceName="myapp",
        taskDefinition=registered["taskDefinitionArn"],
        **raw["service_definition"],
    )
    before = inventory(ecs)
    emulator.admin.reset_calls()
    handle = await deploy(requests.raw())
    error, result = await failure_of(handle)
    calls = emulator.admin.calls()["by_operation"]

    assert error.type == "Refused"
    assert f"service myapp uses the {named}" in error.message
    assert result.outcome == "failed" and result.task_definition_arn is None
    assert calls == {"DescribeServices": 1}
    assert inventory(ecs) == before


@pytest.mark.parametrize(
    ("definition", "named"),
    [
        ({"deploymentController": {"type": "EXTERNAL"}}, "EXTERNAL deployment controller"),
        ({"deploymentConfiguration": {"strategy": "LINEAR"}}, "LINEAR deployment strategy"),
    ],
    ids=["external", "linear"],
)
async def test_a_request_for_another_controller_or_strategy_is_invalid(
    worker, requests, ecs, deploy, definition, named
):
    existing_service(ecs, requests)
    before = inventory(ecs)
    handle = await deploy(requests.raw(service_definition=definition))

    message = await assert_failed_at_once(handle, "InvalidRequest")
    assert f"the service_definition uses the {named}" in message
    assert inventory(ecs) == before
