"""ECS's service scheduler, played against moto's ECS backend objects.

Every tick walks every service of every account and region moto knows, advances task
lifecycles by wall-clock deadlines, registers load-balanced tasks in their target groups
and follows their health (``load_balancing.py``), applies the service rules of
``rollout.py`` (rolling updates, the circuit breaker, draining on delete), keeps ECS's
service deployment records (``service_deployments.py``) and publishes the result onto the
moto objects that the API serializes. The same tick advances the standalone (RunTask)
tasks of ``standalone.py``, so one thread and one lock order every task change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from . import events as msg
from .answers import AnswerModel
from .faults import InjectedFaults, fault_from_images
from .lifecycle import TaskLifecycle
from .load_balancing import LoadBalancing, TargetEvents, failed_health_checks_reason
from .loop_thread import LoopThread
from .model import (
    ACTIVE,
    ROLLING,
    Deployment,
    DeploymentPolicy,
    EmulatedTask,
    ServiceRevision,
)
from .moto_internals import (
    ServiceHandle,
    ServiceRef,
    container_images,
    iter_service_objects,
    resolve_task_definition,
    task_reservation,
)
from .rollout import Rollout
from .service_deployments import ServiceDeployment, revision_summary
from .service_record import ServiceRecord
from .settings import EmulatorSettings
from .standalone import StandaloneTasks

log = logging.getLogger(__name__)


class Scheduler:
    """Owns the scheduler state; every method must run under ``lock``."""

    def __init__(self, settings: EmulatorSettings, faults: InjectedFaults, lock: Any) -> None:
        self.settings = settings
        self.faults = faults
        self.lock = lock
        self.lifecycle = TaskLifecycle(settings)
        self.load_balancing = LoadBalancing(settings)
        self.standalone = StandaloneTasks(self.lifecycle)
        self.rollout = Rollout(self.lifecycle, self.load_balancing, self._launch)
        self._records: dict[int, ServiceRecord] = {}
        # Services no tick can change until a request does (settled, or INACTIVE with nothing
        # left): a tick skips them. Every hook that changes a service takes it out.
        self._quiet: set[int] = set()
        self._task_services: dict[str, str] = {}
        # The clusters whose task counts a tick may have moved since DescribeClusters last
        # read them, each with how to count them: counting walks every task of the cluster
        # (stopped ones too), so it waits for a reader (count_cluster_tasks).
        self._uncounted: dict[tuple[int, str], Callable[[], None]] = {}
        self._thread = LoopThread("ecs-emulator-scheduler")

    # -- thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start(self._run)

    def stop(self) -> None:
        self._thread.stop()

    def _run(self) -> None:
        while not self._thread.stopped(self.settings.tick_seconds):
            try:
                with self.lock:
                    self.tick()
            except Exception:  # a bad tick must not end the scheduler
                log.exception("scheduler tick failed")

    # -- API hooks (called by the request path, under the lock) ---------------------------

    def reset(self) -> None:
        self._records.clear()
        self._quiet.clear()
        self._task_services.clear()
        self._uncounted.clear()
        self.standalone.reset()

    def services(self) -> list[ServiceRecord]:
        """Every service the scheduler follows (INACTIVE ones included)."""
        return list(self._records.values())

    def service_of_task(self, task_arn: str) -> str | None:
        return self._task_services.get(task_arn)

    def stop_task(self, task_arn: str, reason: str | None) -> bool:
        """StopTask on a task the emulator runs; False if it is not one (moto's own, e.g.
        from StartTask). A stopped service task drains its targets first and is replaced by
        the next tick, as in ECS."""
        now = time.monotonic()
        if self.standalone.stop(task_arn, reason, now):
            return True
        for key, record in self._records.items():
            for task in record.all_tasks() + record.draining_tasks:
                if task.handle.arn == task_arn:
                    self._quiet.discard(key)
                    events = TargetEvents()
                    if task.active:
                        drain = self.load_balancing.drain(task, now, events)
                        self.lifecycle.stop_by_user(task, now, reason, drain)
                    events.write(record.handle.name, record.events)
                    self._publish(record)
                    return True
        return False

    def on_service_created(self, ref: ServiceRef, params: dict[str, Any]) -> None:
        handle = ServiceHandle(ref)
        policy = DeploymentPolicy.from_api(params.get("deploymentConfiguration"))
        handle.set_deployment_configuration(policy.as_api())
        record = ServiceRecord(
            handle=handle,
            policy=policy,
            deployments=[],
            network_configuration=params.get("networkConfiguration"),
            managed=handle.deployment_controller == "ECS" and policy.strategy == ROLLING,
        )
        self._records[ref.key] = record
        self._quiet.discard(ref.key)
        if record.managed:
            self._deploy(record, self._new_deployment(ref, handle.task_definition or ""))
        self._publish(record)

    def on_service_updated(self, ref: ServiceRef, params: dict[str, Any]) -> None:
        self._quiet.discard(ref.key)
        record = self.record(ref)
        handle = record.handle
        if "deploymentConfiguration" in params:
            merged = record.policy.as_api() | (params["deploymentConfiguration"] or {})
            record.policy = DeploymentPolicy.from_api(merged)
            handle.set_deployment_configuration(record.policy.as_api())
        if not record.managed:
            self._publish(record)  # no tasks, whatever counts moto wrote
            return
        primary = record.primary
        wanted = primary.task_definition
        if params.get("taskDefinition"):
            wanted = resolve_task_definition(ref, params["taskDefinition"])
        network = params.get("networkConfiguration")
        network_changed = network is not None and network != record.network_configuration
        balancers = params.get("loadBalancers")
        balancers_changed = balancers is not None and balancers != primary.load_balancers
        if (
            wanted != primary.task_definition
            or params.get("forceNewDeployment")
            or network_changed
            or balancers_changed
        ):
            if network is not None:
                record.network_configuration = network
            for deployment in record.deployments:
                deployment.status = ACTIVE
            self._deploy(record, self._new_deployment(ref, wanted))
            record.steady = False
        primary = record.primary
        primary.desired_count = handle.desired_count
        handle.task_definition = primary.task_definition
        self._publish(record)

    def on_service_deleted(self, ref: ServiceRef) -> None:
        self._quiet.discard(ref.key)
        record = self.record(ref)
        record.handle.status = "DRAINING"
        record.handle.desired_count = 0
        record.steady = False
        self._publish(record)

    # -- the tick -------------------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        seen = set()
        for account_id, region, backend, service in iter_service_objects():
            key = id(service)  # ServiceRef.key
            seen.add(key)
            if key in self._quiet:
                continue
            record = self.record(ServiceRef(account_id, region, backend, service))
            if not record.managed:
                if record.handle.status == "DRAINING":  # no tasks to wait for
                    record.handle.status = "INACTIVE"
                else:
                    self._quiet.add(key)
            elif _settled(record):
                self._quiet.add(key)
            elif record.handle.status != "INACTIVE" or record.all_tasks() or record.draining_tasks:
                self._step(record, now)
                cluster_key = (id(backend), record.handle.cluster)
                self._uncounted.setdefault(cluster_key, record.handle.refresh_cluster_counts)
            else:
                self._quiet.add(key)  # INACTIVE with nothing left
        for cluster in self.standalone.tick(now):
            self._uncounted.setdefault(cluster.key, cluster.refresh_counts)
        for key in set(self._records) - seen:
            del self._records[key]
            self._quiet.discard(key)

    def count_cluster_tasks(self) -> None:
        """Recount the running and pending tasks of each cluster a tick changed since the last
        count, for DescribeClusters. Tasks only change in a tick, so the counts read are the
        ones the last tick left; a train of 1,000 changes its cluster in nearly every tick, and
        recounting there was a tenth of the emulator's CPU (docs/release-train-bench.md)."""
        for refresh in self._uncounted.values():
            refresh()
        self._uncounted.clear()

    def record(self, ref: ServiceRef) -> ServiceRecord:
        """The scheduler's view of a service (deployment records included), adopting one
        created outside the hooks (with defaults)."""
        record = self._records.get(ref.key)
        if record is None:
            handle = ServiceHandle(ref)
            policy = DeploymentPolicy()
            handle.set_deployment_configuration(policy.as_api())
            managed = handle.deployment_controller == "ECS"
            record = ServiceRecord(handle, policy, [], managed=managed)
            if managed:
                self._deploy(record, self._new_deployment(ref, handle.task_definition or ""))
            self._records[ref.key] = record
        return record

    def _new_deployment(self, ref: ServiceRef, task_definition: str) -> Deployment:
        """A deployment of the service's current configuration, with its service revision
        and the fault its images (or the admin endpoint) ask for."""
        handle = ServiceHandle(ref)
        deployment = Deployment(
            task_definition, handle.desired_count, load_balancers=handle.load_balancers
        )
        containers = container_images(ref, task_definition) if task_definition else []
        deployment.revision = ServiceRevision(
            arn=handle.arn.replace(":service/", ":service-revision/", 1)
            + "/"
            + deployment.id.split("/")[-1],
            service_arn=handle.arn,
            cluster_arn=handle.cluster_arn,
            task_definition=task_definition,
            launch_type=handle.launch_type,
            platform_version=handle.platform_version,
            load_balancers=deployment.load_balancers,
            network_configuration=handle.network_configuration,
            container_images=containers,
        )
        images = [container["image"] for container in containers]
        deployment.answers = AnswerModel.from_images(images)
        if task_definition:
            deployment.cpu_units, deployment.memory_mb = task_reservation(ref, task_definition)
        injected = self.faults.take(handle.cluster, handle.name)
        found = fault_from_images(images)
        if injected:
            deployment.fault = injected
            deployment.fault_image = images[0] if images else ""
        elif found:
            deployment.fault, deployment.fault_image = found
        return deployment

    def _deploy(self, record: ServiceRecord, deployment: Deployment) -> None:
        """Make ``deployment`` PRIMARY and open its service deployment; one still open is
        superseded (STOPPED), as when ECS gets a new deployment mid-rollout."""
        for earlier in record.history:
            earlier.superseded()
        sources = [d for d in record.deployments if d.active_tasks()]
        record.deployments.insert(0, deployment)
        record.history.append(
            ServiceDeployment.start(
                record.handle.arn,
                record.handle.cluster_arn,
                deployment,
                sources,
                record.policy.as_api(),
                record.policy.circuit_breaker,
            )
        )

    def _step(self, record: ServiceRecord, now: float) -> None:
        events = TargetEvents()
        stopped: list[str] = []
        for deployment in record.deployments:
            for task in deployment.tasks:
                self._advance(record, task, deployment, now, events, stopped)
        for task in record.draining_tasks:
            self._advance(record, task, None, now, events, stopped)
        self.rollout.step(record, now, events, stopped)
        # A task that stopped by itself may still have targets draining: keep following it.
        record.draining_tasks = [
            t for t in record.draining_tasks if t.last_status != "STOPPED" or t.targets
        ]
        for deployment in record.deployments:
            record.draining_tasks.extend(
                t for t in deployment.tasks if t.last_status == "STOPPED" and t.targets
            )
            deployment.tasks = [t for t in deployment.tasks if t.last_status != "STOPPED"]
        self._publish(record)

    # -- one task: lifecycle (lifecycle.py) and targets (load_balancing.py) ---------------

    def _advance(
        self,
        record: ServiceRecord,
        task: EmulatedTask,
        deployment: Deployment | None,
        now: float,
        events: TargetEvents,
        stopped: list[str],
    ) -> None:
        if self.lifecycle.advance(task, now) and deployment is not None:
            self.rollout.count_failure(deployment)
        if deployment is not None and task.load_balanced and task.running and not task.targets:
            self.load_balancing.register(task, deployment.load_balancers, now, events)
        failed = self.load_balancing.check(task, now) if task.running else None
        if failed is not None and deployment is not None:
            events.unhealthy.append(
                msg.unhealthy_target(
                    record.handle.name, task.handle.id, failed.port, failed.group.arn
                )
            )
            reason = failed_health_checks_reason(failed.group.arn)
            self.rollout.begin_stop(task, now, reason, events)
            self.rollout.count_failure(deployment)
            stopped.append(task.handle.id)
        if not task.active:  # e.g. its essential container exited: the ELB drains it anyway
            self.load_balancing.drain(task, now, events)
        self.load_balancing.finish_draining(task, now)

    def _launch(self, record: ServiceRecord, deployment: Deployment, now: float) -> EmulatedTask:
        handle = record.handle.start_task(deployment.task_definition, deployment.id)
        task = self.lifecycle.launch(handle, now, deployment.fault, deployment.fault_image)
        task.load_balanced = bool(deployment.load_balancers)
        deployment.tasks.append(task)
        self._task_services[handle.arn] = record.handle.name
        return task

    def _publish(self, record: ServiceRecord) -> None:
        tasks = record.all_tasks()
        current = record.history[-1].arn if record.history else None
        record.handle.publish(
            deployments=[d.as_api() for d in record.deployments],
            running=sum(t.running for t in tasks),
            pending=sum(t.starting for t in tasks),
            events=record.events.entries,
            current_service_deployment=current,
            current_service_revisions=[revision_summary(d) for d in record.deployments],
        )


def _settled(record: ServiceRecord) -> bool:
    """Nothing a tick could change: an ACTIVE service at steady state whose tasks all run for
    good (none exits, stops, starts or has targets). What changes one (UpdateService,
    DeleteService, StopTask) breaks one of these conditions and takes it out of `_quiet`, so
    the next tick steps it again.
    Stepping every steady service on every tick cost 12 ms a tick at 300 of them."""
    if not record.steady or record.draining_tasks or len(record.deployments) != 1:
        return False
    tasks = record.primary.tasks
    return (
        record.handle.status == "ACTIVE"
        and len(tasks) == record.handle.desired_count
        and all(t.running and t.exit_at is None and not t.load_balanced for t in tasks)
    )
