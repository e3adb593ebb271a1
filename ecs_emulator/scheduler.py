"""ECS's service scheduler, played against moto's ECS backend objects.

Every tick walks every service of every account and region moto knows, advances task
lifecycles by wall-clock deadlines, applies the rolling-update rules
(minimumHealthyPercent / maximumPercent), the deployment circuit breaker, draining on
delete, and publishes the result onto the moto objects that the API serializes. The same
tick advances the standalone (RunTask) tasks of ``standalone.py``, so one thread and one
lock order every task change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import events as msg
from .faults import InjectedFaults, fault_from_images
from .lifecycle import TaskLifecycle
from .model import (
    ACTIVE,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    Deployment,
    DeploymentPolicy,
    EmulatedTask,
    ServiceRecord,
    failure_threshold,
    now_utc,
)
from .moto_internals import (
    ServiceHandle,
    ServiceRef,
    iter_services,
    resolve_task_definition,
    task_definition_images,
)
from .settings import EmulatorSettings
from .standalone import StandaloneTasks

log = logging.getLogger(__name__)

CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."


class Scheduler:
    """Owns the scheduler state; every method must run under ``lock``."""

    def __init__(self, settings: EmulatorSettings, faults: InjectedFaults, lock: Any) -> None:
        self.settings = settings
        self.faults = faults
        self.lock = lock
        self.lifecycle = TaskLifecycle(settings)
        self.standalone = StandaloneTasks(self.lifecycle)
        self._records: dict[int, ServiceRecord] = {}
        self._task_services: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- thread ---------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ecs-emulator-scheduler")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.settings.tick_seconds):
            try:
                with self.lock:
                    self.tick()
            except Exception:  # a bad tick must not end the scheduler
                log.exception("scheduler tick failed")

    # -- API hooks (called by the request path, under the lock) ---------------------------

    def reset(self) -> None:
        self._records.clear()
        self._task_services.clear()
        self.standalone.reset()

    def service_of_task(self, task_arn: str) -> str | None:
        return self._task_services.get(task_arn)

    def stop_task(self, task_arn: str, reason: str | None) -> bool:
        """StopTask on a task the emulator runs; False if it is not one (moto's own, e.g.
        from StartTask). A stopped service task is replaced by the next tick, as in ECS."""
        now = time.monotonic()
        if self.standalone.stop(task_arn, reason, now):
            return True
        for record in self._records.values():
            for task in record.all_tasks() + record.draining_tasks:
                if task.handle.arn == task_arn:
                    self.lifecycle.stop_by_user(task, now, reason)
                    self._publish(record)
                    return True
        return False

    def on_service_created(self, ref: ServiceRef, params: dict[str, Any]) -> None:
        handle = ServiceHandle(ref)
        policy = DeploymentPolicy.from_api(params.get("deploymentConfiguration"))
        record = ServiceRecord(
            handle=handle,
            policy=policy,
            deployments=[self._new_deployment(ref, handle.task_definition or "")],
            network_configuration=params.get("networkConfiguration"),
        )
        handle.set_deployment_configuration(policy.as_api())
        self._records[ref.key] = record
        self._publish(record)

    def on_service_updated(self, ref: ServiceRef, params: dict[str, Any]) -> None:
        record = self._record_for(ref)
        handle = record.handle
        if "deploymentConfiguration" in params:
            merged = record.policy.as_api() | (params["deploymentConfiguration"] or {})
            record.policy = DeploymentPolicy.from_api(merged)
            handle.set_deployment_configuration(record.policy.as_api())
        primary = record.primary
        wanted = primary.task_definition
        if params.get("taskDefinition"):
            wanted = resolve_task_definition(ref, params["taskDefinition"])
        network = params.get("networkConfiguration")
        network_changed = network is not None and network != record.network_configuration
        if wanted != primary.task_definition or params.get("forceNewDeployment") or network_changed:
            if network is not None:
                record.network_configuration = network
            for deployment in record.deployments:
                deployment.status = ACTIVE
            record.deployments.insert(0, self._new_deployment(ref, wanted))
            record.steady = False
        primary = record.primary
        primary.desired_count = handle.desired_count
        handle.task_definition = primary.task_definition
        self._publish(record)

    def on_service_deleted(self, ref: ServiceRef) -> None:
        record = self._record_for(ref)
        record.handle.status = "DRAINING"
        record.handle.desired_count = 0
        record.steady = False
        self._publish(record)

    # -- the tick -------------------------------------------------------------------------

    def tick(self) -> None:
        now = time.monotonic()
        seen = set()
        clusters: dict[tuple[int, str], Callable[[], None]] = {}
        for ref in iter_services():
            seen.add(ref.key)
            record = self._record_for(ref)
            if record.handle.status != "INACTIVE" or record.all_tasks():
                self._step(record, now)
                cluster_key = (id(ref.backend), record.handle.cluster)
                clusters.setdefault(cluster_key, record.handle.refresh_cluster_counts)
        for cluster in self.standalone.tick(now):
            clusters.setdefault(cluster.key, cluster.refresh_counts)
        # Tasks only change in a tick: recount each cluster once, not once per service.
        for refresh in clusters.values():
            refresh()
        for key in set(self._records) - seen:
            del self._records[key]

    def _record_for(self, ref: ServiceRef) -> ServiceRecord:
        """The record for a service, adopting ones created outside the hooks (defaults)."""
        record = self._records.get(ref.key)
        if record is None:
            handle = ServiceHandle(ref)
            policy = DeploymentPolicy()
            handle.set_deployment_configuration(policy.as_api())
            deployment = self._new_deployment(ref, handle.task_definition or "")
            record = ServiceRecord(handle, policy, [deployment])
            self._records[ref.key] = record
        return record

    def _new_deployment(self, ref: ServiceRef, task_definition: str) -> Deployment:
        handle = ServiceHandle(ref)
        deployment = Deployment(task_definition, handle.desired_count)
        injected = self.faults.take(handle.cluster, handle.name)
        images = task_definition_images(ref, task_definition) if task_definition else []
        found = fault_from_images(images)
        if injected:
            deployment.fault = injected
            deployment.fault_image = images[0] if images else ""
        elif found:
            deployment.fault, deployment.fault_image = found
        return deployment

    def _step(self, record: ServiceRecord, now: float) -> None:
        for deployment in record.deployments:
            for task in deployment.tasks:
                self._advance(task, deployment, now)
        for task in record.draining_tasks:
            self._advance(task, None, now)
        self._check_circuit_breaker(record)
        if record.handle.status in ("DRAINING", "INACTIVE"):
            self._drain(record, now)
        else:
            self._roll(record, now)
            self._check_completion(record)
        for deployment in record.deployments:
            deployment.tasks = [t for t in deployment.tasks if t.last_status != "STOPPED"]
        record.draining_tasks = [t for t in record.draining_tasks if t.last_status != "STOPPED"]
        self._publish(record)

    # -- task lifecycle (see lifecycle.py) -----------------------------------------------

    def _advance(self, task: EmulatedTask, deployment: Deployment | None, now: float) -> None:
        if self.lifecycle.advance(task, now) and deployment is not None:
            deployment.failed_tasks += 1
            deployment.updated_at = now_utc()

    def _begin_stop(self, task: EmulatedTask, now: float, reason: str) -> None:
        self.lifecycle.begin_stop(task, now, reason)

    def _launch(self, record: ServiceRecord, deployment: Deployment, now: float) -> EmulatedTask:
        handle = record.handle.start_task(deployment.task_definition, deployment.id)
        task = self.lifecycle.launch(handle, now, deployment.fault, deployment.fault_image)
        deployment.tasks.append(task)
        self._task_services[handle.arn] = record.handle.name
        return task

    # -- service rules --------------------------------------------------------------------

    def _roll(self, record: ServiceRecord, now: float) -> None:
        """One scheduling pass of a rolling update (also plain scale up/down)."""
        desired = record.handle.desired_count
        primary, old = record.primary, record.deployments[1:]
        primary.desired_count = desired
        reason = f"Scaling activity initiated by (deployment {primary.id})"
        stopped: list[str] = []

        def stop(task: EmulatedTask) -> None:
            self._begin_stop(task, now, reason)
            stopped.append(task.handle.id)

        excess = len(primary.active_tasks()) - desired
        if excess > 0:
            for task in sorted(primary.active_tasks(), key=lambda t: t.healthy)[:excess]:
                stop(task)
        for deployment in old:
            for task in deployment.active_tasks():
                if task.starting:
                    stop(task)
        min_healthy = record.policy.min_healthy(desired)
        healthy = sum(t.healthy for t in record.all_tasks())
        for deployment in reversed(old):
            for task in deployment.active_tasks():
                if healthy <= min_healthy:
                    break
                stop(task)
                healthy -= 1
        for deployment in old:
            deployment.desired_count = len(deployment.active_tasks())

        started: list[str] = []
        if primary.rollout_state != FAILED:
            active = sum(t.active for t in record.all_tasks())
            room = record.policy.max_tasks(desired) - active
            for _ in range(min(desired - len(primary.active_tasks()), room)):
                started.append(self._launch(record, primary, now).handle.id)
        if stopped:
            record.events.add(msg.stopped_tasks(record.handle.name, stopped))
        if started:
            record.events.add(msg.started_tasks(record.handle.name, started))

    def _check_completion(self, record: ServiceRecord) -> None:
        primary, old = record.primary, record.deployments[1:]
        desired = record.handle.desired_count
        # A crash-looping task is RUNNING for a moment but never lets a rollout complete.
        healthy = sum(t.healthy and t.exit_at is None for t in primary.tasks)
        settled = healthy == desired and len(primary.active_tasks()) == desired
        old_drained = not any(d.active_tasks() for d in old)
        if primary.rollout_state == IN_PROGRESS and settled and old_drained:
            primary.rollout_state = COMPLETED
            primary.rollout_state_reason = f"ECS deployment {primary.id} completed."
            primary.updated_at = now_utc()
            record.events.add(msg.deployment_completed(record.handle.name, primary.id))
            record.last_completed = primary
            for deployment in old:
                record.draining_tasks.extend(deployment.tasks)
            record.deployments = [primary]
        stable = len(record.deployments) == 1 and primary.rollout_state == COMPLETED and settled
        if stable and not record.steady:
            record.events.add(msg.steady_state(record.handle.name))
        record.steady = stable

    def _check_circuit_breaker(self, record: ServiceRecord) -> None:
        primary = record.primary
        if not record.policy.circuit_breaker or primary.rollout_state != IN_PROGRESS:
            return
        if primary.failed_tasks < failure_threshold(record.handle.desired_count):
            return
        primary.rollout_state = FAILED
        primary.rollout_state_reason = CIRCUIT_BREAKER_REASON
        primary.updated_at = now_utc()
        name = record.handle.name
        target = record.last_completed
        if not (record.policy.rollback and target is not None and target is not primary):
            record.events.add(msg.deployment_failed(name, primary.id))
            return
        record.events.add(msg.deployment_failed_rolling_back(name, primary.id))
        for deployment in record.deployments:
            deployment.status = ACTIVE
        rollback = Deployment(target.task_definition, record.handle.desired_count)
        rollback.rollout_state_reason = (
            f"ECS deployment circuit breaker: rolling back to deploymentId {target.id}."
        )
        record.deployments.insert(0, rollback)
        record.handle.task_definition = target.task_definition
        record.events.add(msg.rolling_back(name, target.id))

    def _drain(self, record: ServiceRecord, now: float) -> None:
        reason = f"Scaling activity initiated by (deployment {record.primary.id})"
        stopped = []
        for task in record.all_tasks():
            if task.active:
                self._begin_stop(task, now, reason)
                stopped.append(task.handle.id)
        if stopped:
            record.events.add(msg.stopped_tasks(record.handle.name, stopped))
        record.primary.desired_count = 0
        live = [t for t in record.all_tasks() + record.draining_tasks if t.last_status != "STOPPED"]
        if not live and record.handle.status == "DRAINING":
            record.handle.status = "INACTIVE"

    def _publish(self, record: ServiceRecord) -> None:
        tasks = record.all_tasks()
        record.handle.publish(
            deployments=[d.as_api() for d in record.deployments],
            running=sum(t.healthy for t in tasks),
            pending=sum(t.starting for t in tasks),
            events=record.events.entries,
        )
