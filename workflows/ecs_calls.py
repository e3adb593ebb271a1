"""A deployment's ECS steps: each builds its input from the run's location (the service and
the stage it acts on) and makes its call as `workflows.calls` says that kind of call is made.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.ecs import EcsActivities
    from activities.search_attributes import missing_search_attributes
    from ecs_canary import search_attributes as sa
    from ecs_canary.models import (
        CreateServiceInput,
        DeleteServiceInput,
        DescribeServicesInput,
        DescribeTaskDefinitionInput,
        RegisteredTaskDefinition,
        RegisterTaskDefinitionInput,
        ServiceChange,
        ServiceSnapshot,
        ServiceSnapshots,
        Stage,
        StartChecks,
        SteadyState,
        UpdateServiceInput,
        WaitInactiveInput,
        WaitSteadyInput,
    )
    from workflows.calls import start_checks
    from workflows.failures import StageFailure, failure_reason
    from workflows.presentation import short_arn
    from workflows.run_part import RunPart


class EcsSteps(RunPart):
    """A deployment's ECS steps."""

    # --- The steps -------------------------------------------------------------------------

    async def start_checks(self) -> StartChecks:
        """The deployment's search attributes that the namespace lacks, and the worker's
        signing policy (not an ECS call, but as quick as one: a local activity)."""
        return await workflow.execute_local_activity(
            missing_search_attributes,
            [key.name for key in sa.ALL],
            **start_checks("Check search attributes"),
        )

    async def describe_services(
        self, services: list[str], stage: Stage, summary: str, scalable_target_of: str | None = None
    ) -> ServiceSnapshots:
        request = self._request
        return await self._run.calls.call(
            EcsActivities.describe_services,
            DescribeServicesInput(
                region=request.region,
                cluster=request.cluster,
                services=services,
                stage=stage,
                scalable_target_of=scalable_target_of,
            ),
            summary=summary,
        )

    async def where_service_was_left(self, name: str) -> str:
        """Where a failed rollback left a service, in plain words (never raises: it only
        completes the failure's message)."""
        try:
            found = await self.describe_services(
                [name], Stage.ROLLBACK, f"Describe service {name} after the failed rollback"
            )
        except Exception as err:
            return f"its state is unknown ({failure_reason(err)[1]})"
        service = found.services[name]
        if service is None:
            return f"service {name} no longer exists"
        return (
            f"service {name} was left {service.status} on task definition "
            f"{service.task_definition} with {service.running_count}/{service.desired_count} "
            "tasks running"
        )

    async def register_task_definition(self, run_id: str) -> RegisteredTaskDefinition:
        request = self._request
        return await self._run.calls.call(
            EcsActivities.register_task_definition,
            RegisterTaskDefinitionInput(
                **self._run.location(request.canary_service_name, Stage.CANARY_DEPLOY),
                task_definition=request.task_definition,
                run_id=run_id,
                may_be_repeated=self._run.calls.may_repeat,
            ),
            summary=f"Register task definition {request.task_definition['family']}",
        )

    async def check_rollback_possible(self, previous: ServiceSnapshot) -> None:
        """ECS cannot point a service back at a deregistered task definition: a deployment
        that could not be rolled back stops before anyone verifies it."""
        arn = previous.task_definition
        state = await self._run.calls.call(
            EcsActivities.describe_task_definition,
            DescribeTaskDefinitionInput(region=self._request.region, arn=arn),
            summary=f"Check rollback target {short_arn(arn)}",
        )
        if state.status != "ACTIVE":
            raise StageFailure(
                Stage.CANARY_DEPLOY,
                f"the service's current task definition {arn} is {state.status or 'gone'}, "
                "so a failed rollout could not be rolled back; the main service was not touched",
                "PreviousTaskDefinitionInactive",
            )

    async def create_service(
        self,
        service: str,
        stage: Stage,
        arn: str,
        desired: int,
        tags: dict[str, str],
        load_balancers: list[dict[str, Any]] | None = None,
    ) -> ServiceChange:
        request = self._request
        return await self._run.calls.call(
            EcsActivities.create_service,
            CreateServiceInput(
                **self._run.location(service, stage),
                task_definition_arn=arn,
                service_definition=request.service_definition,
                desired_count=desired,
                tags=tags,
                load_balancers=load_balancers,
                may_be_repeated=self._run.calls.may_repeat,
            ),
            summary=f"Create service {service} (desired {desired})",
        )

    async def update_service(
        self,
        stage: Stage,
        arn: str,
        desired: int,
        deployment_configuration: dict[str, Any] | None,
    ) -> ServiceChange:
        request = self._request
        return await self._run.calls.call(
            EcsActivities.update_service,
            UpdateServiceInput(
                **self._run.location(stage=stage),
                task_definition_arn=arn,
                desired_count=desired,
                deployment_configuration=deployment_configuration,
                may_be_repeated=self._run.calls.may_repeat,
            ),
            summary=f"Update service {request.service_name} to {short_arn(arn)} "
            f"(desired {desired})",
        )

    async def wait_for_steady_state(
        self,
        service: str,
        stage: Stage,
        change: ServiceChange,
        arn: str,
        timeout: float,
        *,
        alarms: list[str],
        done_message: str | None = None,
    ) -> SteadyState:
        request = self._request
        return await self._run.calls.wait(
            EcsActivities.wait_for_steady_state,
            WaitSteadyInput(
                **self._run.location(service, stage),
                poll_interval_seconds=request.poll_interval_seconds,
                timeout_seconds=timeout,
                events_since=change.deployment_created_at or workflow.now(),
                done_message=done_message,
                task_definition_arn=arn,
                max_failed_tasks=request.max_failed_tasks,
                alarms=alarms,
                service_deployment_arn=change.service_deployment_arn,
            ),
            timeout_seconds=timeout,
            summary=f"Wait for {service} to reach steady state",
        )

    async def wait_steady(
        self,
        service: str,
        change: ServiceChange,
        arn: str,
        timeout: float,
        *,
        alarms: list[str] | None = None,
        done_message: str | None = None,
    ) -> None:
        """Wait for the canary or the main service to be steady in the running stage, and
        record what the wait saw (`status` and the Web UI show it)."""
        steady = await self.wait_for_steady_state(
            service,
            self._state.stage,
            change,
            arn,
            timeout,
            alarms=alarms or [],
            done_message=done_message,
        )
        self._state.saw(steady)

    async def remove_service(
        self, service: str, stage: Stage, done_message: str | None = None
    ) -> None:
        """Delete a service and wait until ECS has it INACTIVE; the canary is then recorded
        as deleted."""
        request, calls = self._request, self._run.calls
        location = self._run.location(service, stage)
        since = workflow.now()
        await calls.call(
            EcsActivities.delete_service,
            DeleteServiceInput(**location),
            summary=f"Delete service {service}",
        )
        timeout = request.stage_timeouts.canary_delete
        await calls.wait(
            EcsActivities.wait_for_inactive,
            WaitInactiveInput(
                **location,
                poll_interval_seconds=request.poll_interval_seconds,
                timeout_seconds=timeout,
                events_since=since,
                done_message=done_message,
            ),
            timeout_seconds=timeout,
            summary=f"Wait for {service} to be INACTIVE",
        )
        if service == request.canary_service_name:
            self._state.canary_may_exist = False
            self._state.canary_deleted = True
