"""The weighted canary's listener rule, the main service's auto scaling and the refusals, on
the time-skipping server with fake activities: what is called, in what order, on each path,
and that a plain request calls none of it."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError, CancelledError

from ecs_canary.models import Outcome
from ecs_canary.scaling import ScalableTarget, SuspendedState
from ecs_canary.traffic import ListenerRule, listener_arn_of
from tests.workflow.conftest import request
from tests.workflow.fakes import FakeEcs, running_service
from tests.workflow.reading import failure_of, result_of, status_of, until

ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
RULE = f"{ELB}:listener-rule/app/myapp-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
MAIN_TG = f"{ELB}:targetgroup/myapp-tg/73e2d6bc24d8a067"
CANARY_TG = f"{ELB}:targetgroup/myapp-canary-tg/4f3b2a1c0d9e8f7a"
RECORDED = [{"Type": "forward", "TargetGroupArn": MAIN_TG, "Order": 1}]
BEHIND_MAIN = [{"targetGroupArn": MAIN_TG, "containerName": "web", "containerPort": 80}]
SCHEDULED_OFF = SuspendedState(scheduled_scaling=True)


def _traffic(weight: int = 10) -> dict[str, Any]:
    traffic = {
        "listener_rule_arn": RULE,
        "canary_target_group_arn": CANARY_TG,
        "weight_percent": weight,
    }
    return request(canary={"traffic": traffic}, verification={"timeout_seconds": 600})


@pytest.fixture
def weighted(fake_ecs: FakeEcs) -> FakeEcs:
    """myapp behind MAIN_TG; RULE forwards everything to MAIN_TG."""
    main = running_service("myapp").model_copy(update={"load_balancers": BEHIND_MAIN})
    fake_ecs.services["myapp"] = main
    rule = ListenerRule(
        rule_arn=RULE, listener_arn=listener_arn_of(RULE), is_default=False, actions=RECORDED
    )
    fake_ecs.rules[RULE] = rule
    return fake_ecs


@pytest.fixture
def autoscaled(fake_ecs: FakeEcs) -> FakeEcs:
    """myapp (3 tasks) with a scalable target of range 1-10, scheduled scaling suspended."""
    fake_ecs.services["myapp"] = running_service("myapp", desired=3)
    fake_ecs.scalable_target = ScalableTarget(
        resource_id="service/ecs-canary/myapp",
        min_capacity=1,
        max_capacity=10,
        suspended=SCHEDULED_OFF,
    )
    return fake_ecs


def _rule_calls(fake: FakeEcs) -> list[tuple[str, Any]]:
    """The rule's changes and the canary's delete, in order: ("shift" | "restore" | "delete")."""
    order = []
    for name, arg in fake.calls:
        if name == "set_rule_actions":
            order.append(("restore" if arg.restoring else "shift", arg.actions))
        elif name == "delete_service" and arg.service == "myappCanary":
            order.append(("delete", None))
    return order


def _weighted_actions() -> list[dict[str, Any]]:
    groups = [
        {"TargetGroupArn": MAIN_TG, "Weight": 90},
        {"TargetGroupArn": CANARY_TG, "Weight": 10},
    ]
    return [{"Type": "forward", "Order": 1, "ForwardConfig": {"TargetGroups": groups}}]


async def test_the_rule_is_weighted_for_the_gate_and_put_back_before_the_canary_goes(
    weighted, start
):
    handle = await start(_traffic())
    await until(handle, "verification", gate_open=True)
    gate = await status_of(handle)
    await handle.execute_update("approve", {"by": "alice"})
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    names = weighted.names()
    assert names.index("read_listener_rule") < names.index("register_task_definition")
    (canary_create,) = weighted.inputs("create_service")
    assert canary_create.load_balancers == [
        {"targetGroupArn": CANARY_TG, "containerName": "web", "containerPort": 80}
    ]
    assert _rule_calls(weighted) == [
        ("shift", _weighted_actions()),
        ("restore", RECORDED),
        ("delete", None),
    ]
    assert gate.traffic is not None and gate.traffic.shifted
    assert gate.traffic.weights == {MAIN_TG: 90.0, CANARY_TG: 10.0}
    assert weighted.rules[RULE].actions == RECORDED
    final = await status_of(handle)
    assert final.traffic is not None and not final.traffic.shifted
    assert final.traffic.weights == {MAIN_TG: 100.0, CANARY_TG: 0.0}


@pytest.mark.parametrize("ending", ["reject", "cancel"])
async def test_every_way_out_of_the_gate_puts_the_rule_back_first(weighted, start, ending):
    handle = await start(_traffic())
    await until(handle, "verification", gate_open=True)
    if ending == "reject":
        await handle.signal("reject", {"by": "alice"})
        assert (await handle.result()).outcome == Outcome.REJECTED
    else:
        await handle.cancel()
        assert isinstance(await failure_of(handle), CancelledError)

    assert [step for step, _ in _rule_calls(weighted)] == ["shift", "restore", "delete"]
    assert weighted.rules[RULE].actions == RECORDED


async def test_a_failure_after_the_shift_puts_the_rule_back_before_the_canary_goes(
    weighted, start
):
    """The alarms cannot be watched (DescribeAlarms refused) once the canary has its weight:
    the run fails, and the one cleanup path puts the rule back before deleting the canary."""
    weighted.failing.add("watch_alarms")
    traffic = _traffic()
    traffic["verification"]["alarms"] = ["myapp-5xx"]
    error = await failure_of(await start(traffic))

    assert isinstance(error, ApplicationError) and error.type == "AccessDenied"
    assert [step for step, _ in _rule_calls(weighted)] == ["shift", "restore", "delete"]
    assert weighted.rules[RULE].actions == RECORDED
    assert result_of(error).canary_deleted


async def test_a_failed_rollout_does_not_restore_the_rule_twice(weighted, start):
    weighted.waits[("myapp", "rolling_deploy")] = "fail"
    handle = await start(_traffic())
    await until(handle, "verification", gate_open=True)
    await handle.signal("approve", {"by": "alice"})
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "RolledBack"
    assert [step for step, _ in _rule_calls(weighted)] == ["shift", "restore", "delete"]


async def test_a_canary_that_never_got_its_weight_leaves_the_rule_alone(weighted, start):
    weighted.waits[("myappCanary", "canary_deploy")] = "fail"
    error = await failure_of(await start(_traffic()))

    assert isinstance(error, ApplicationError) and error.type == "TasksFailed"
    assert _rule_calls(weighted) == [("delete", None)]


async def test_a_rule_that_cannot_be_put_back_keeps_the_canary_serving(weighted, start):
    weighted.failing.add("restore_rule")
    handle = await start(_traffic())
    await until(handle, "verification", gate_open=True)
    await handle.signal("reject", {"by": "alice"})
    error = await failure_of(handle)

    assert isinstance(error, ApplicationError) and error.type == "AccessDenied"
    assert "myapp-tg 90 %, myapp-canary-tg 10 %, so canary service myappCanary was left" in (
        error.message
    )
    assert not result_of(error).canary_deleted
    assert [step for step, _ in _rule_calls(weighted)] == ["shift", "restore", "restore"]


@pytest.mark.parametrize(
    ("rule_actions", "load_balancers", "refusal"),
    [
        (
            [
                {
                    "Type": "forward",
                    "ForwardConfig": {
                        "TargetGroups": [
                            {"TargetGroupArn": MAIN_TG, "Weight": 80},
                            {"TargetGroupArn": CANARY_TG, "Weight": 20},
                        ]
                    },
                }
            ],  # fmt: skip
            BEHIND_MAIN,
            "already forwards 20 % to the canary's target group myapp-canary-tg",
        ),
        ([{"Type": "fixed-response"}], BEHIND_MAIN, "has no single forward action to weight"),
        (RECORDED, [], "neither the service_definition nor service myapp has any"),
    ],
    ids=["left-shifted", "no-forward", "no-load-balancers"],
)
async def test_a_rule_or_service_that_cannot_carry_the_weight_is_refused_first(
    weighted, start, rule_actions, load_balancers, refusal
):
    weighted.rules[RULE] = weighted.rules[RULE].model_copy(update={"actions": rule_actions})
    main = weighted.services["myapp"]
    weighted.services["myapp"] = main.model_copy(update={"load_balancers": load_balancers})
    error = await failure_of(await start(_traffic()))

    assert isinstance(error, ApplicationError) and error.type == "Refused"
    assert refusal in error.message
    assert weighted.names() == ["describe_services", "read_listener_rule"]


async def test_dynamic_scaling_is_held_for_the_rollout_only(autoscaled, start):
    handle = await start(request(verification={"require_approval": False}))
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    held, restored = autoscaled.inputs("set_suspended_state")
    assert held.suspended == SuspendedState(
        dynamic_scaling_in=True, dynamic_scaling_out=True, scheduled_scaling=True
    )
    assert restored.suspended == SCHEDULED_OFF
    names = autoscaled.names()
    rollout_wait = max(i for i, name in enumerate(names) if name == "wait_for_steady_state")
    hold, restore = (i for i, name in enumerate(names) if name == "set_suspended_state")
    assert hold < names.index("update_service") < rollout_wait < restore
    final = await status_of(handle)
    assert final.scaling is not None and not final.scaling.suspended


@pytest.mark.parametrize(
    "ending",
    ["fail", pytest.param("hang", marks=pytest.mark.abandons_activity)],
    ids=["rolled-back", "cancelled"],
)
async def test_scaling_is_put_back_after_the_rollback(autoscaled, start, ending):
    autoscaled.waits[("myapp", "rolling_deploy")] = ending
    handle = await start(request(verification={"require_approval": False}))
    if ending == "hang":
        await autoscaled.hanging.wait()
        await handle.cancel()
    await failure_of(handle)

    rollout, rollback = autoscaled.inputs("update_service")
    assert rollback.task_definition_arn != rollout.task_definition_arn
    names = autoscaled.names()
    last_update = max(i for i, name in enumerate(names) if name == "update_service")
    restore = max(i for i, name in enumerate(names) if name == "set_suspended_state")
    assert last_update < restore
    assert autoscaled.inputs("set_suspended_state")[-1].suspended == SCHEDULED_OFF


async def test_a_scaling_restore_that_fails_never_rolls_a_finished_rollout_back(autoscaled, start):
    autoscaled.failing.add("restore_scaling")
    handle = await start(request(verification={"require_approval": False}))
    result = await handle.result()

    assert result.outcome == Outcome.SUCCEEDED
    assert len(autoscaled.inputs("update_service")) == 1
    final = await status_of(handle)
    assert final.scaling is not None and final.scaling.suspended
    assert final.scaling.restore_failure == "restore_scaling failed: AccessDenied"


async def test_a_count_outside_the_scaling_range_is_refused_before_any_change(autoscaled, start):
    autoscaled.scalable_target = ScalableTarget(
        resource_id="service/ecs-canary/myapp", min_capacity=1, max_capacity=2
    )
    error = await failure_of(await start(request()))

    assert isinstance(error, ApplicationError) and error.type == "Refused"
    assert "desiredCount 3 is outside the auto scaling range of service myapp [1, 2]" in (
        error.message
    )
    assert autoscaled.names() == ["describe_services"]


async def test_same_as_running_instances_reads_the_autoscaled_count_again(autoscaled, start):
    handle = await start(request(rolling={"same_as_running_instances": True}))
    await until(handle, "verification", gate_open=True)
    main = autoscaled.services["myapp"]
    autoscaled.services["myapp"] = main.model_copy(update={"desired_count": 7})  # scaled out
    await handle.execute_update("approve", {"by": "alice"})
    await handle.result()

    (update,) = autoscaled.inputs("update_service")
    assert update.desired_count == 7
    reread = autoscaled.inputs("describe_services")[-1]
    assert (reread.services, reread.stage.value) == (["myapp"], "rolling_deploy")


async def test_a_code_deploy_service_is_refused_naming_its_controller(fake_ecs, start):
    main = running_service("myapp").model_copy(update={"deployment_controller": "CODE_DEPLOY"})
    fake_ecs.services["myapp"] = main
    error = await failure_of(await start(request()))

    assert isinstance(error, ApplicationError) and error.type == "Refused"
    assert "service myapp uses the CODE_DEPLOY deployment controller" in error.message
    assert fake_ecs.names() == ["describe_services"]


async def test_a_plain_request_calls_nothing_of_it(fake_ecs, start):
    fake_ecs.services["myapp"] = running_service("myapp")
    handle = await start(request(verification={"require_approval": False}))
    await handle.result()

    assert not {"read_listener_rule", "set_rule_actions", "set_suspended_state"} & set(
        fake_ecs.names()
    )
    first = fake_ecs.inputs("describe_services")[0]
    assert first.scalable_target_of == "myapp"
    assert fake_ecs.inputs("create_service")[0].load_balancers is None
