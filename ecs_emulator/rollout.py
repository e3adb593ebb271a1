"""ECS's service rules, one scheduling pass at a time: rolling updates within
minimumHealthyPercent / maximumPercent, COMPLETED and steady state, the deployment circuit
breaker and its rollback, draining on delete. Each outcome also moves the deployment's
service deployment record (``service_deployments.py``).

"Healthy" is ``EmulatedTask.healthy``: RUNNING, and behind a load balancer only once its
targets are healthy, so a load-balanced deployment completes only with healthy targets.
"""

from __future__ import annotations

from collections.abc import Callable

from . import events as msg
from .lifecycle import TaskLifecycle
from .load_balancing import LoadBalancing, TargetEvents
from .model import (
    ACTIVE,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    Deployment,
    EmulatedTask,
    failure_threshold,
    now_utc,
)
from .service_record import ServiceRecord

CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."

Launch = Callable[[ServiceRecord, Deployment, float], EmulatedTask]


class Rollout:
    """The service rules; ``launch`` starts a task of a deployment (the scheduler's)."""

    def __init__(
        self, lifecycle: TaskLifecycle, load_balancing: LoadBalancing, launch: Launch
    ) -> None:
        self._lifecycle = lifecycle
        self._load_balancing = load_balancing
        self._launch = launch

    def step(
        self, record: ServiceRecord, now: float, events: TargetEvents, stopped: list[str]
    ) -> None:
        """One pass after the tasks moved; ``stopped`` already holds the ids of tasks stopped
        in this tick (failed health checks). Writes the tick's events in ECS's order."""
        self._check_circuit_breaker(record)
        started: list[str] = []
        deleting = record.handle.status in ("DRAINING", "INACTIVE")
        if deleting:
            self._drain(record, now, events, stopped)
        else:
            self._roll(record, now, events, stopped, started)
        for message in events.unhealthy:
            record.events.add(message)
        if stopped:
            record.events.add(msg.stopped_tasks(record.handle.name, stopped))
        if started:
            record.events.add(msg.started_tasks(record.handle.name, started))
        events.write(record.handle.name, record.events)
        if not deleting:
            self._check_completion(record)

    def begin_stop(self, task: EmulatedTask, now: float, reason: str, events: TargetEvents) -> None:
        """ECS stops a task: its targets drain first, then the containers stop."""
        drain = self._load_balancing.drain(task, now, events)
        self._lifecycle.begin_stop(task, now, reason, drain_seconds=drain)

    @staticmethod
    def count_failure(deployment: Deployment) -> None:
        """A task that failed to start, exited, or failed its ELB health checks."""
        deployment.failed_tasks += 1
        deployment.updated_at = now_utc()

    def _roll(
        self,
        record: ServiceRecord,
        now: float,
        events: TargetEvents,
        stopped: list[str],
        started: list[str],
    ) -> None:
        """One scheduling pass of a rolling update (also plain scale up/down)."""
        desired = record.handle.desired_count
        primary, old = record.primary, record.deployments[1:]
        primary.desired_count = desired
        reason = f"Scaling activity initiated by (deployment {primary.id})"

        def stop(task: EmulatedTask) -> None:
            self.begin_stop(task, now, reason, events)
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
                if task.healthy:
                    healthy -= 1
                stop(task)
        for deployment in old:
            deployment.desired_count = len(deployment.active_tasks())

        if primary.rollout_state != FAILED:
            active = sum(t.active for t in record.all_tasks())
            room = record.policy.max_tasks(desired) - active
            for _ in range(min(desired - len(primary.active_tasks()), room)):
                started.append(self._launch(record, primary, now).handle.id)

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
            service_deployment = record.service_deployment_of(primary)
            if service_deployment is not None:
                service_deployment.completed(primary)
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
        service_deployment = record.service_deployment_of(primary)
        rolled_back_already = (
            service_deployment is not None and service_deployment.rollback is primary
        )
        can_roll_back = target is not None and target is not primary and not rolled_back_already
        if not (record.policy.rollback and can_roll_back):
            record.events.add(msg.deployment_failed(name, primary.id))
            if service_deployment is not None:
                service_deployment.failed(primary, CIRCUIT_BREAKER_REASON)
            return
        assert target is not None
        record.events.add(msg.deployment_failed_rolling_back(name, primary.id))
        for deployment in record.deployments:
            deployment.status = ACTIVE
        rollback = Deployment(
            target.task_definition,
            record.handle.desired_count,
            load_balancers=target.load_balancers,
            revision=target.revision,
        )
        rollback.rollout_state_reason = (
            f"ECS deployment circuit breaker: rolling back to deploymentId {target.id}."
        )
        record.deployments.insert(0, rollback)
        record.handle.task_definition = target.task_definition
        if service_deployment is not None:
            service_deployment.rolling_back(
                rollback, CIRCUIT_BREAKER_REASON, rollback.rollout_state_reason
            )
        record.events.add(msg.rolling_back(name, target.id))

    def _drain(
        self, record: ServiceRecord, now: float, events: TargetEvents, stopped: list[str]
    ) -> None:
        reason = f"Scaling activity initiated by (deployment {record.primary.id})"
        for task in record.all_tasks():
            if task.active:
                self.begin_stop(task, now, reason, events)
                stopped.append(task.handle.id)
        record.primary.desired_count = 0
        live = [t for t in record.all_tasks() + record.draining_tasks if t.last_status != "STOPPED"]
        if not live and record.handle.status == "DRAINING":
            record.handle.status = "INACTIVE"
