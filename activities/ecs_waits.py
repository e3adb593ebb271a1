"""The ECS waits: one heartbeating activity per wait, polling until the service is where the
step wants it, and failing fast, with ECS's own reasons, when it will not get there.

A retried wait carries on from its last heartbeat (`WaitProgress`): it does not log again what
the attempt before it logged. Log lines follow the wording of ECS deployment tooling (Harness).
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.alarms import firing_alarm
from activities.aws import AwsClients, final_error
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
    SteadyState,
    WaitInactiveInput,
    WaitProgress,
    WaitSteadyInput,
)


def _restored_progress() -> WaitProgress:
    """What an earlier attempt of this wait already saw and logged."""
    details = activity.info().heartbeat_details
    return WaitProgress.model_validate(details[0]) if details else WaitProgress()


class EcsWaits:
    """The waits of `activities.ecs.EcsActivities` (which registers them with the worker)."""

    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

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
                    raise final_error(
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
        return final_error(f"{message}{reasons}", failure_type)

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
