"""ECS activities: one per ECS call (describe, register, create, update, delete), and the
waits, inherited from `activities.ecs_waits.EcsWaits`, so that the worker registers one class.

Each is safe to run again: a retry after a crash finds what the first attempt did instead of
doing it twice. Log lines follow the wording of ECS deployment tooling (Harness).
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
from temporalio import activity

from activities.autoscaling import scalable_target
from activities.aws import (
    aws_error_code,
    aws_error_message,
    aws_errors,
    final_error,
    latest_tagged_revision,
)
from activities.cancellation import sync_activity
from activities.ecs_waits import EcsWaits
from activities.polling import activity_logger
from activities.steady_state import ServiceView
from ecs_canary.models import (
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
    TaskDefinitionState,
    UpdateServiceInput,
)
from ecs_canary.names import RUN_ID_TAG
from ecs_canary.supported_services import controller_and_strategy


def _snapshot(service: dict[str, Any]) -> ServiceSnapshot:
    view = ServiceView(service)
    return ServiceSnapshot(
        arn=view.arn,
        status=view.status,
        task_definition=view.task_definition,
        desired_count=view.desired,
        running_count=view.running,
        deployment_configuration=service.get("deploymentConfiguration"),
        load_balancers=service.get("loadBalancers") or [],
        deployment_controller=controller_and_strategy(service)[0],
        created_by_run=next(
            (tag["value"] for tag in service.get("tags") or [] if tag.get("key") == RUN_ID_TAG),
            None,
        ),
    )


def _is_retry() -> bool:
    """A retry may follow an attempt that already made its change; a first attempt cannot."""
    return activity.info().attempt > 1


class EcsActivities(EcsWaits):
    """A deployment's ECS calls, and its waits (`EcsWaits`)."""

    def _describe_one(self, client: Any, cluster: str, service: str) -> dict[str, Any] | None:
        with aws_errors("DescribeServices"):
            found = client.describe_services(cluster=cluster, services=[service])["services"]
        return found[0] if found else None

    @sync_activity
    def describe_services(self, request: DescribeServicesInput) -> ServiceSnapshots:
        """The services' current state; None for one ECS does not have (or has as INACTIVE).
        A missing cluster fails here, before the deployment creates anything. The first look
        also reads the main service's scalable target: a count outside its range is refused
        before anything changes, at no cost of a step of its own."""
        client = self._clients.ecs(request.region)
        with aws_errors("DescribeServices"):
            described = self._clients.describer.describe_many(
                client, request.cluster, request.services
            )
        found = {
            name: _snapshot(service)
            for name, service in described.items()
            if service is not None and service["status"] != "INACTIVE"
        }
        scaled = request.scalable_target_of
        target = (
            scalable_target(self._clients.autoscaling(request.region), request.cluster, scaled)
            if scaled is not None and found.get(scaled) is not None
            else None
        )
        return ServiceSnapshots(
            services={name: found.get(name) for name in request.services}, scalable_target=target
        )

    @sync_activity
    def describe_task_definition(self, request: DescribeTaskDefinitionInput) -> TaskDefinitionState:
        client = self._clients.ecs(request.region)
        try:
            task_definition = client.describe_task_definition(taskDefinition=request.arn)
        except botocore.exceptions.ClientError as err:
            if aws_error_code(err) == "ClientException":  # ECS's word for "no such revision"
                return TaskDefinitionState(arn=request.arn, status=None)
            with aws_errors("DescribeTaskDefinition"):
                raise
        return TaskDefinitionState(
            arn=request.arn, status=task_definition["taskDefinition"].get("status")
        )

    @sync_activity
    def register_task_definition(
        self, request: RegisterTaskDefinitionInput
    ) -> RegisteredTaskDefinition:
        """Register the revision once per run: the revision is tagged with the run id, and a
        retry that finds the family's latest revision tagged so returns it."""
        log = activity_logger(request)
        client = self._clients.ecs(request.region)
        family = request.task_definition["family"]
        previous = (
            self._latest_revision_of_run(client, family, request.run_id)
            if _is_retry() or request.may_be_repeated
            else None
        )
        if previous is not None:
            log.info(
                f"Task Definition {family}:{previous.revision} was already registered by "
                f"this run with Arn {previous.arn}"
            )
            return previous
        log.info(f"Creating Task Definition with family {family}")
        tags = [
            *request.task_definition.get("tags", []),
            {"key": RUN_ID_TAG, "value": request.run_id},
        ]
        with aws_errors("RegisterTaskDefinition"):
            registered = client.register_task_definition(
                **{**request.task_definition, "tags": tags}
            )
        revision = registered["taskDefinition"]
        arn = revision["taskDefinitionArn"]
        log.info(f"Created Task Definition {family}:{revision['revision']} with Arn {arn}..")
        return RegisteredTaskDefinition(arn=arn, family=family, revision=revision["revision"])

    def _latest_revision_of_run(
        self, client: Any, family: str, run_id: str
    ) -> RegisteredTaskDefinition | None:
        revision = latest_tagged_revision(client, family, RUN_ID_TAG, run_id)
        if revision is None:
            return None
        return RegisteredTaskDefinition(
            arn=revision["taskDefinitionArn"], family=family, revision=revision["revision"]
        )

    @sync_activity
    def create_service(self, request: CreateServiceInput) -> ServiceChange:
        """Create the service; one that exists already with this task definition is done."""
        log = activity_logger(request)
        client = self._clients.ecs(request.region)
        if (_is_retry() or request.may_be_repeated) and (
            done := self._already_created(client, request, log)
        ):
            return done
        log.info(
            f"Creating Service {request.service} with task definition "
            f"{request.task_definition_arn} and desired count {request.desired_count}"
        )
        tags = [
            *request.service_definition.get("tags", []),
            *({"key": k, "value": v} for k, v in request.tags.items()),
        ]
        load_balancers = (
            {} if request.load_balancers is None else {"loadBalancers": request.load_balancers}
        )
        try:
            created = client.create_service(
                **{
                    **request.service_definition,
                    **load_balancers,
                    "cluster": request.cluster,
                    "serviceName": request.service,
                    "taskDefinition": request.task_definition_arn,
                    "desiredCount": request.desired_count,
                    "tags": tags,
                }
            )["service"]
        except botocore.exceptions.ClientError as err:
            # ECS refuses a second create of an ACTIVE service as "not idempotent".
            if "idempotent" in aws_error_message(err) and (
                done := self._already_created(client, request, log)
            ):
                return done
            with aws_errors("CreateService"):
                raise
        return self._change(created, changed=True)

    def _already_created(
        self, client: Any, request: CreateServiceInput, log: Any
    ) -> ServiceChange | None:
        existing = self._describe_one(client, request.cluster, request.service)
        if existing is None or existing["status"] != "ACTIVE":
            return None
        if existing["taskDefinition"] != request.task_definition_arn:
            raise final_error(
                f"Service {request.service} already exists with task definition "
                f"{existing['taskDefinition']}",
                "ServiceAlreadyExists",
            )
        log.info(
            f"Service {request.service} already exists with task definition "
            f"{request.task_definition_arn}"
        )
        return self._change(existing, changed=False)

    @staticmethod
    def _change(service: dict[str, Any], changed: bool) -> ServiceChange:
        view = ServiceView(service)
        primary = view.primary_deployment
        return ServiceChange(
            arn=view.arn,
            deployment_id=primary.id if primary else None,
            deployment_created_at=primary.created_at if primary else None,
            changed=changed,
            service_deployment_arn=service.get("currentServiceDeployment"),
        )

    @sync_activity
    def update_service(self, request: UpdateServiceInput) -> ServiceChange:
        """Point the service at the task definition and count; a no-op when already there."""
        log = activity_logger(request)
        client = self._clients.ecs(request.region)
        if (_is_retry() or request.may_be_repeated) and (
            done := self._already_updated(client, request, log)
        ):
            return done
        log.info(
            f"Updating Service {request.service} with task definition "
            f"{request.task_definition_arn} and desired count {request.desired_count}"
        )
        extra = (
            {"deploymentConfiguration": request.deployment_configuration}
            if request.deployment_configuration
            else {}
        )
        with aws_errors("UpdateService"):  # ServiceNotActiveException when it is gone
            updated = client.update_service(
                cluster=request.cluster,
                service=request.service,
                taskDefinition=request.task_definition_arn,
                desiredCount=request.desired_count,
                **extra,
            )["service"]
        return self._change(updated, changed=True)

    def _already_updated(
        self, client: Any, request: UpdateServiceInput, log: Any
    ) -> ServiceChange | None:
        current = self._describe_one(client, request.cluster, request.service)
        if current is None or current["status"] != "ACTIVE":
            return None  # the update itself reports what ECS says about it
        view = ServiceView(current)
        applied = (
            view.task_definition == request.task_definition_arn
            and view.desired == request.desired_count
            and not view.is_rolled_back(request.task_definition_arn)
            and request.deployment_configuration in (None, current.get("deploymentConfiguration"))
        )
        if not applied:
            return None
        log.info(
            f"Service {request.service} already runs task definition "
            f"{request.task_definition_arn} with desired count {request.desired_count}"
        )
        return self._change(current, changed=False)

    @sync_activity
    def delete_service(self, request: DeleteServiceInput) -> DeleteServiceResult:
        """Force-delete the service; one that is absent or already going away is done."""
        log = activity_logger(request)
        client = self._clients.ecs(request.region)
        log.info(f"Deleting service {request.service}..")
        try:
            client.delete_service(cluster=request.cluster, service=request.service, force=True)
        except botocore.exceptions.ClientError as err:
            if aws_error_code(err) in ("ServiceNotFoundException", "ServiceNotActiveException"):
                log.info(f"Service {request.service} is already gone")
                return DeleteServiceResult(deleted=False)
            with aws_errors("DeleteService"):
                raise
        return DeleteServiceResult(deleted=True)
