"""Target health for services behind load balancers: what ECS and the ELB do around a task.

A service created with ``loadBalancers`` (targetGroupArn, containerName, containerPort)
registers each of its tasks, once RUNNING, in every one of those target groups: the task's
ENI address as an ``ip`` target on the container port. The target is ``initial`` for
``health_check_seconds``, then ``healthy``; with the ``unhealthy`` image tag it is
``unhealthy`` instead, and ECS stops the task one health check period later (stoppedReason
``Task failed ELB health checks in (target-group <arn>)``, counted as a failed task).
When ECS stops a task it first drains its targets for the group's
``deregistration_delay.timeout_seconds`` and deregisters them afterwards; the task stays
DEACTIVATING meanwhile. The scheduler's rules (minimumHealthyPercent, COMPLETED, steady
state) count a load-balanced task as healthy only once all its targets are.

Every method runs under the emulator lock, from the scheduler's tick or its API hooks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from . import events as msg
from .model import DRAINING, HEALTHY, INITIAL, UNHEALTHY, EmulatedTask, Target
from .moto_elbv2 import find_target_group
from .moto_internals import TaskDefinitionInfo
from .settings import EmulatorSettings

UNHEALTHY_FAULT = "unhealthy"
# DescribeTargetHealth's Reason and Description for each state, in the ELB's words.
HEALTH_DETAILS: dict[str, tuple[str | None, str | None]] = {
    INITIAL: ("Elb.RegistrationInProgress", "Target registration is in progress"),
    HEALTHY: (None, None),
    UNHEALTHY: ("Target.FailedHealthChecks", "Health checks failed"),
    DRAINING: ("Target.DeregistrationInProgress", "Target deregistration is in progress"),
}


def failed_health_checks_reason(target_group_arn: str) -> str:
    """The stoppedReason ECS gives a task it stops for failing ELB health checks."""
    return f"Task failed ELB health checks in (target-group {target_group_arn})"


def load_balancer_error(
    load_balancers: list[dict[str, Any]], definition: TaskDefinitionInfo
) -> str | None:
    """ECS's InvalidParameterException message for a ``loadBalancers`` list it would refuse
    with this task definition, or None. The emulator registers ``ip`` targets of awsvpc tasks
    only: ``instance`` targets need container instances, which it does not emulate."""
    for load_balancer in load_balancers:
        arn = load_balancer.get("targetGroupArn")
        if not arn:
            return "The emulator supports target groups (targetGroupArn) only, not Classic ELBs."
        group = find_target_group(arn)
        if group is None:
            return (
                "Unable to assume role and validate the specified targetGroupArn. Please verify "
                "that the ECS service role being passed has the proper permissions."
            )
        if not group.has_load_balancer:
            return (
                f"The target group with targetGroupArn {arn} does not have an associated "
                "load balancer."
            )
        mode = definition.network_mode
        if (group.target_type == "ip") != (mode == "awsvpc"):
            return (
                f"The provided target group {arn} has target type {group.target_type}, which is "
                f"incompatible with the {mode} network mode specified in the task definition."
            )
        if group.target_type != "ip":
            return (
                f"Target group {arn} has target type {group.target_type}: the emulator registers "
                "ip targets of awsvpc tasks only (container instances are not emulated)."
            )
        name, port = load_balancer.get("containerName"), load_balancer.get("containerPort")
        containers = [c for c in definition.container_definitions if c.get("name") == name]
        if not containers:
            return f"The container {name} does not exist in the task definition."
        ports = [m.get("containerPort") for m in containers[0].get("portMappings") or []]
        if port not in ports:
            return f"The container {name} did not have a container port {port} defined."
    return None


@dataclass
class TargetEvents:
    """What one tick did to one service's targets, written as ECS's aggregated events."""

    registered: Counter[str] = field(default_factory=Counter)
    deregistered: Counter[str] = field(default_factory=Counter)
    draining_tasks: int = 0
    unhealthy: list[str] = field(default_factory=list)

    def write(self, service: str, log: msg.EventLog) -> None:
        """Draining and (de)registrations; ``unhealthy`` messages are written by the caller,
        before it reports the tasks it stopped for them."""
        if self.draining_tasks:
            log.add(msg.began_draining(service, self.draining_tasks))
        for arn, count in self.deregistered.items():
            log.add(msg.deregistered_targets(service, count, arn))
        for arn, count in self.registered.items():
            log.add(msg.registered_targets(service, count, arn))


class LoadBalancing:
    """Registers, checks and drains the targets of load-balanced service tasks."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings

    def register(
        self,
        task: EmulatedTask,
        load_balancers: list[dict[str, Any]],
        now: float,
        events: TargetEvents,
    ) -> None:
        """A task that just reached RUNNING joins its target groups as ``initial``. A group
        deleted since the service was created is skipped (the task never turns healthy)."""
        address = task.handle.private_ip
        if address is None:
            return
        verdict_at = now + self.settings.health_check_seconds
        for load_balancer in load_balancers:
            group = find_target_group(load_balancer["targetGroupArn"])
            if group is None:
                continue
            port = int(load_balancer["containerPort"])
            group.register(address, port)
            target = Target(group, address, port, INITIAL, verdict_at)
            self._set(target, INITIAL, verdict_at)
            task.targets.append(target)
            events.registered[group.arn] += 1

    def check(self, task: EmulatedTask, now: float) -> Target | None:
        """Health check verdicts that are due. A target of an ``unhealthy`` task stays
        ``unhealthy`` for one more health check period before ECS acts on it (as ECS sees
        the ELB's verdict some time after the ELB does): returns such a target, once."""
        failed = None
        for target in task.targets:
            if target.state == INITIAL and now >= target.until:
                if task.fault == UNHEALTHY_FAULT:
                    self._set(target, UNHEALTHY, target.until + self.settings.health_check_seconds)
                else:
                    self._set(target, HEALTHY, target.until)
            if target.state == UNHEALTHY and now >= target.until and failed is None:
                failed = target
        return failed

    def drain(self, task: EmulatedTask, now: float, events: TargetEvents) -> float:
        """Start draining every target still registered; returns how long the task must wait
        (the longest deregistration delay among them, 0 without targets)."""
        wait = 0.0
        draining = [target for target in task.targets if target.state != DRAINING]
        for target in draining:
            delay = target.group.deregistration_delay
            self._set(target, DRAINING, now + delay)
            events.deregistered[target.group.arn] += 1
            wait = max(wait, delay)
        if draining:
            events.draining_tasks += 1
        return wait

    def finish_draining(self, task: EmulatedTask, now: float) -> None:
        """Targets whose deregistration delay is over leave their groups."""
        for target in [t for t in task.targets if t.state == DRAINING and now >= t.until]:
            target.group.deregister(target.id)
            task.targets.remove(target)

    @staticmethod
    def _set(target: Target, state: str, until: float) -> None:
        target.state, target.until = state, until
        target.group.set_health(target.id, state, *HEALTH_DETAILS[state])
