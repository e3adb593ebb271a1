"""ECS activities: one per ECS call, plus one heartbeating activity per wait.

Each is safe to run again: a retry after a crash finds what the first attempt did instead of
doing it twice. Log lines follow the wording of ECS deployment tooling (Harness).
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.alarms import firing_alarm
from activities.autoscaling import scalable_target
from activities.aws import (
    AwsClients,
    aws_error_code,
    aws_error_message,
    aws_errors,
    latest_tagged_revision,
)
from activities.cancellation import sync_activity
from activities.deployment_tasks import stop_reasons
from activities.polling import (
    Heartbeats,
    activity_logger,
    first_useful_poll,
    sleep_until_next_poll,
)
from activities.service_deployments import find_record, record_verdict
from activities.service_events import log_new_events
from activities.steady_state import Failed, ServiceView, Steady, decide_steady_state
from activities.target_health import (
    deployment_targets,
    targets_reached_text,
    waiting_for_targets_text,
)
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
    SteadyState,
    TaskDefinitionState,
    UpdateServiceInput,
    WaitInactiveInput,
    WaitProgress,
    WaitSteadyInput,
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
    )


def _restored_progress() -> WaitProgress:
    """What an earlier attempt of this wait already saw and logged."""
    details = activity.info().heartbeat_details
    return WaitProgress.model_validate(details[0]) if details else WaitProgress()


def _is_retry() -> bool:
    """A retry may follow an attempt that already made its change; a first attempt cannot."""
    return activity.info().attempt > 1


def _final(message: str, failure_type: str) -> ApplicationError:
    return ApplicationError(message, type=failure_type, non_retryable=True)


class EcsActivities:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

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
        if _is_retry() and (done := self._already_created(client, request, log)):
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
            raise _final(
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
        if _is_retry() and (done := self._already_updated(client, request, log)):
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

    @sync_activity
    def wait_for_steady_state(self, request: WaitSteadyInput) -> SteadyState:
        """Poll until this run's deployment is the only one, fully running and COMPLETED; fail
        fast when its tasks stop, ECS fails or rolls it back, or a guarding alarm fires."""
        log = activity_logger(request)
        client = self._clients.ecs(request.region)
        progress = _restored_progress()
        heartbeats = Heartbeats()
        first_poll = first_useful_poll(request.poll_interval_seconds)
        while True:
            sleep_until_next_poll(request.poll_interval_seconds, not_before=first_poll)
            service = self._clients.describer.describe(client, request.cluster, request.service)
            log_new_events(service, request.events_since, progress, log)
            steady = self._steady_state(client, request, service, progress, log)
            if steady is not None:
                return steady
            if request.alarms:
                firing = firing_alarm(self._clients.cloudwatch(request.region), request.alarms)
                if firing is not None:
                    raise _final(
                        f"Alarm {firing.name} went into ALARM during the deployment of "
                        f"{request.service}: {firing.reason}",
                        "AlarmFired",
                    )
            heartbeats.beat(progress.model_dump(mode="json"))

    def _steady_state(
        self,
        client: Any,
        request: WaitSteadyInput,
        service: dict[str, Any] | None,
        progress: WaitProgress,
        log: Any,
    ) -> SteadyState | None:
        """Act on the decision: fail (with ECS's reasons for stopped tasks), log progress once
        per change, or log and return the steady state."""
        name = request.service
        decision = decide_steady_state(
            service, name, request.task_definition_arn, request.max_failed_tasks
        )
        if isinstance(decision, Failed):
            raise self._failure(client, request, decision, log)
        running, desired = decision.running, decision.desired
        progress.running_count, progress.desired_count = running, desired
        self._say_once(
            progress, log, f"Waiting for pending tasks to finish. {running}/{desired} running ..."
        )
        if running != desired:
            return None
        if not progress.steady_wait_announced:
            log.info(f"Waiting for Service {name} to reach steady state")
            progress.steady_wait_announced = True
        if not isinstance(decision, Steady) or service is None:
            return None
        targets = deployment_targets(
            self._clients, request.region, request.cluster, service, decision.deployment_id
        )
        if not all(count.all_healthy for count in targets):
            line = waiting_for_targets_text(name, targets)
            if line != progress.last_targets_progress:
                log.info(line)
                progress.last_targets_progress = line
            return None
        log.info(f"Service {name} reached steady state")
        if targets:
            log.info(targets_reached_text(name, targets))
        if request.done_message:
            log.info(request.done_message.format(arn=ServiceView(service).arn))
        return SteadyState(
            running_count=running,
            desired_count=desired,
            deployment_id=decision.deployment_id,
            recent_events=progress.recent_events,
            targets=targets,
        )

    def _failure(
        self, client: Any, request: WaitSteadyInput, decision: Failed, log: Any
    ) -> ApplicationError:
        """The wait's failure: ECS's record of the deployment names it where DescribeServices
        only shows that the deployment lost (see activities.service_deployments), and the
        stopped tasks' reasons follow."""
        failure_type, message = decision.failure_type, decision.message
        if failure_type in ("DeploymentRolledBack", "DeploymentFailed"):
            record = find_record(
                client,
                request.cluster,
                request.service,
                request.service_deployment_arn,
                request.events_since,
                log,
            )
            verdict = record_verdict(record, request.service) if record is not None else None
            if verdict is not None:
                failure_type, message = verdict
        reasons = (
            stop_reasons(client, request.cluster, decision.stopped_tasks_of)
            if decision.stopped_tasks_of
            else ""
        )
        return _final(f"{message}{reasons}", failure_type)

    @staticmethod
    def _say_once(progress: WaitProgress, log: Any, line: str) -> None:
        if line != progress.last_progress:
            log.info(line)
            progress.last_progress = line

    @sync_activity
    def wait_for_inactive(self, request: WaitInactiveInput) -> None:
        log = activity_logger(request)
        client = self._clients.ecs(request.region)
        progress = _restored_progress()
        heartbeats = Heartbeats()
        self._say_once(
            progress, log, f"Waiting for existing Service {request.service} to reach inactive state"
        )
        first_poll = first_useful_poll(request.poll_interval_seconds)
        while True:
            sleep_until_next_poll(request.poll_interval_seconds, not_before=first_poll)
            service = self._clients.describer.describe(client, request.cluster, request.service)
            log_new_events(service, request.events_since, progress, log)
            if service is None or service["status"] == "INACTIVE":
                log.info(f"Existing Service {request.service} reached inactive state")
                if request.done_message:
                    log.info(request.done_message)
                return
            heartbeats.beat(progress.model_dump(mode="json"))
