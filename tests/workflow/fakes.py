"""Stand-in ECS and CloudWatch activities, registered by the real activities' names, so the
workflow's decisions can be tested on the time-skipping server without an emulator.

`FakeEcs` keeps the services it was told about and records every call; a test scripts how each
wait ends (`waits`) and reads the calls back (`calls`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.search_attributes import start_checks
from ecs_canary.aws_inputs import ReadListenerRuleInput, SetRuleActionsInput, SetSuspendedStateInput
from ecs_canary.models import (
    AlarmFiring,
    AlarmsInput,
    CreateServiceInput,
    DeleteServiceInput,
    DeleteServiceResult,
    DescribeServicesInput,
    DescribeTaskDefinitionInput,
    RegisteredTaskDefinition,
    RegisterTaskDefinitionInput,
    ServiceChange,
    ServiceSnapshot,
    ServiceSnapshots,
    StartChecks,
    SteadyState,
    TaskDefinitionState,
    UpdateServiceInput,
    WaitInactiveInput,
    WaitSteadyInput,
    WatchAlarmsInput,
)
from ecs_canary.scaling import ScalableTarget
from ecs_canary.steps import HttpStepInput, MetricsStepInput, RunTaskStepInput, StepVerdict
from ecs_canary.traffic import ListenerRule

NEW_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/myapp-task:2"
OLD_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/myapp-task:1"
# How a scripted wait ends: steady, failed with an ECS verdict, or never (until cancelled).
WaitEnd = Literal["steady", "fail", "hang"]


def running_service(name: str, desired: int = 3, arn: str = OLD_ARN) -> ServiceSnapshot:
    return ServiceSnapshot(
        arn=f"arn:aws:ecs:us-east-1:123456789012:service/ecs-canary/{name}",
        status="ACTIVE",
        task_definition=arn,
        desired_count=desired,
        running_count=desired,
        deployment_configuration={"maximumPercent": 200, "minimumHealthyPercent": 100},
    )


@dataclass
class FakeEcs:
    services: dict[str, ServiceSnapshot] = field(default_factory=dict)
    # (service, stage) -> how its wait for steady state ends; unlisted waits end steady.
    waits: dict[tuple[str, str], WaitEnd] = field(default_factory=dict)
    task_definition_status: str | None = "ACTIVE"
    alarm: AlarmFiring | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # step name -> its verdict, or "hang" (until cancelled); unlisted steps pass.
    steps: dict[str, StepVerdict | Literal["hang"]] = field(default_factory=dict)
    # Set while a scripted "hang" wait runs, and when it was cancelled.
    hanging: asyncio.Event = field(default_factory=asyncio.Event)
    hang_cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    # The main service's scalable target (looked up with the first describe), and the listener
    # rules by ARN: set_rule_actions changes their actions. A name in `failing` fails its calls:
    # "shift_rule" / "restore_rule" (set_rule_actions), "hold_scaling" / "restore_scaling"
    # (set_suspended_state, told apart by whether dynamic scaling is to be suspended).
    scalable_target: ScalableTarget | None = None
    rules: dict[str, ListenerRule] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def inputs(self, name: str) -> list[Any]:
        return [arg for called, arg in self.calls if called == name]

    def activities(self) -> list[Any]:
        fake = self

        @activity.defn(name="missing_search_attributes")
        async def missing_search_attributes(names: list[str]) -> StartChecks:
            # The test server has none of them registered; the policy is the real one.
            return start_checks(names)

        @activity.defn(name="describe_services")
        async def describe_services(request: DescribeServicesInput) -> ServiceSnapshots:
            fake.calls.append(("describe_services", request))
            scaled = request.scalable_target_of
            return ServiceSnapshots(
                services={name: fake.services.get(name) for name in request.services},
                scalable_target=fake.scalable_target if scaled in fake.services else None,
            )

        @activity.defn(name="read_listener_rule")
        async def read_listener_rule(request: ReadListenerRuleInput) -> ListenerRule:
            fake.calls.append(("read_listener_rule", request))
            return fake.rules[request.rule_arn]

        @activity.defn(name="set_rule_actions")
        async def set_rule_actions(request: SetRuleActionsInput) -> None:
            fake.calls.append(("set_rule_actions", request))
            fake._fail_if_scripted("restore_rule" if request.restoring else "shift_rule")
            rule = fake.rules[request.rule.rule_arn]
            fake.rules[rule.rule_arn] = rule.model_copy(update={"actions": request.actions})

        @activity.defn(name="set_suspended_state")
        async def set_suspended_state(request: SetSuspendedStateInput) -> None:
            fake.calls.append(("set_suspended_state", request))
            holding = request.suspended.dynamic_scaling_in
            fake._fail_if_scripted("hold_scaling" if holding else "restore_scaling")

        @activity.defn(name="describe_task_definition")
        async def describe_task_definition(
            request: DescribeTaskDefinitionInput,
        ) -> TaskDefinitionState:
            fake.calls.append(("describe_task_definition", request))
            return TaskDefinitionState(arn=request.arn, status=fake.task_definition_status)

        @activity.defn(name="register_task_definition")
        async def register_task_definition(
            request: RegisterTaskDefinitionInput,
        ) -> RegisteredTaskDefinition:
            fake.calls.append(("register_task_definition", request))
            return RegisteredTaskDefinition(arn=NEW_ARN, family="myapp-task", revision=2)

        @activity.defn(name="create_service")
        async def create_service(request: CreateServiceInput) -> ServiceChange:
            fake.calls.append(("create_service", request))
            service = running_service(request.service, request.desired_count)
            fake.services[request.service] = service.model_copy(
                update={
                    "task_definition": request.task_definition_arn,
                    "running_count": 0,
                    # As the real activity tags it, and DescribeServices tells.
                    "created_by_run": activity.info().workflow_run_id,
                }
            )
            return ServiceChange(
                arn=service.arn, deployment_id="ecs-svc/1", deployment_created_at=None, changed=True
            )

        @activity.defn(name="update_service")
        async def update_service(request: UpdateServiceInput) -> ServiceChange:
            fake.calls.append(("update_service", request))
            current = fake.services[request.service]
            fake.services[request.service] = current.model_copy(
                update={
                    "task_definition": request.task_definition_arn,
                    "desired_count": request.desired_count,
                }
            )
            return ServiceChange(
                arn=current.arn, deployment_id="ecs-svc/2", deployment_created_at=None, changed=True
            )

        @activity.defn(name="delete_service")
        async def delete_service(request: DeleteServiceInput) -> DeleteServiceResult:
            fake.calls.append(("delete_service", request))
            return DeleteServiceResult(deleted=fake.services.pop(request.service, None) is not None)

        @activity.defn(name="wait_for_inactive")
        async def wait_for_inactive(request: WaitInactiveInput) -> None:
            fake.calls.append(("wait_for_inactive", request))

        @activity.defn(name="wait_for_steady_state")
        async def wait_for_steady_state(request: WaitSteadyInput) -> SteadyState:
            fake.calls.append(("wait_for_steady_state", request))
            end = fake.waits.get((request.service, request.stage.value), "steady")
            if end == "fail":
                raise ApplicationError(
                    f"2 task(s) of service {request.service} failed to start",
                    type="TasksFailed",
                    non_retryable=True,
                )
            if end == "hang":
                await fake._hang()
            service = fake.services[request.service]
            fake.services[request.service] = service.model_copy(
                update={"running_count": service.desired_count}
            )
            return SteadyState(
                running_count=service.desired_count,
                desired_count=service.desired_count,
                deployment_id="ecs-svc/1",
                recent_events=[f"(service {request.service}) has reached a steady state."],
            )

        @activity.defn(name="watch_alarms")
        async def watch_alarms(request: WatchAlarmsInput) -> AlarmFiring:
            fake.calls.append(("watch_alarms", request))
            fake._fail_if_scripted("watch_alarms")
            await fake._hang(until=lambda: fake.alarm is not None)
            assert fake.alarm is not None
            return fake.alarm

        @activity.defn(name="find_alarms")
        async def find_alarms(request: AlarmsInput) -> None:
            fake.calls.append(("find_alarms", request))
            fake._fail_if_scripted("find_alarms")

        async def verification_step(
            request: RunTaskStepInput | HttpStepInput | MetricsStepInput,
        ) -> StepVerdict:
            fake.calls.append((activity.info().activity_type, request))
            verdict = fake.steps.get(request.step.name, StepVerdict(passed=True, summary="ok"))
            if verdict == "hang":
                await fake._hang()
                raise AssertionError("a hanging step only ends by being cancelled")
            return verdict

        @activity.defn(name="run_task_step")
        async def run_task_step(request: RunTaskStepInput) -> StepVerdict:
            return await verification_step(request)

        @activity.defn(name="http_step")
        async def http_step(request: HttpStepInput) -> StepVerdict:
            return await verification_step(request)

        @activity.defn(name="metrics_step")
        async def metrics_step(request: MetricsStepInput) -> StepVerdict:
            return await verification_step(request)

        return [
            run_task_step,
            http_step,
            metrics_step,
            missing_search_attributes,
            describe_services,
            read_listener_rule,
            set_rule_actions,
            set_suspended_state,
            describe_task_definition,
            register_task_definition,
            create_service,
            update_service,
            delete_service,
            wait_for_inactive,
            wait_for_steady_state,
            watch_alarms,
            find_alarms,
        ]

    def _fail_if_scripted(self, name: str) -> None:
        if name in self.failing:
            raise ApplicationError(
                f"{name} failed: AccessDenied", type="AccessDenied", non_retryable=True
            )

    async def _hang(self, until: Callable[[], bool] = lambda: False) -> None:
        """Heartbeat until `until()` holds or the workflow cancels this activity (a cancel
        arrives with a heartbeat's answer)."""
        self.hanging.set()
        try:
            while not until():
                activity.heartbeat()
                await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.hang_cancelled.set()
            raise
