"""moto's ELBv2 target groups: where the scheduler registers a load-balanced service's tasks.

Split out of ``moto_internals`` like ``moto_tasks``; the same rule holds: every moto private
name the emulator touches for ELBv2 is used here, and
``tests/e2e/test_emulator_moto_internals.py`` checks them.

moto reports every registered target ``healthy`` at once. ECS's rules hang on the health a
target goes through (``initial``, then ``healthy`` or ``unhealthy``, ``draining`` on the way
out), so each target group the emulator registers in gets its own ``health_for`` (the method
moto's DescribeTargetHealth asks for each target): it answers the state the scheduler set,
and leaves targets the emulator did not register (RegisterTargets by hand) to moto.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.elbv2.models import FakeHealthStatus, elbv2_backends

# Read or written on moto's FakeTargetGroup (checked by the test), and the attribute key of the
# deregistration delay; AWS's default is 300 seconds.
TARGET_GROUP_ATTRIBUTES = (
    "arn",
    "target_type",
    "load_balancer_arns",
    "attributes",
    "targets",
    "health_check_port",
    "health_for",
    "register",
    "deregister",
)
# Read to find what forwards to a target group: moto's own ``load_balancer_arns`` misses groups
# that only ModifyListener or ModifyRule made a forward action point at.
FORWARDING_ATTRIBUTES = {
    "backend": ("target_groups", "load_balancers"),
    "load_balancer": ("arn", "listeners"),
    "listener": ("arn", "default_actions", "rules"),
    "rule": ("actions",),
    "action": ("data",),
}
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
DEFAULT_DEREGISTRATION_DELAY = 300.0

# The scheduler's health per target id, kept on the moto target group itself, so it goes
# with moto's state on reset.
_HEALTH = "_ecs_emulator_health"


class TargetGroupHandle:
    """One moto target group, as the scheduler uses it."""

    def __init__(self, target_group: Any, backend: Any) -> None:
        self._group = target_group
        self._backend = backend

    @property
    def arn(self) -> str:
        return self._group.arn

    @property
    def target_type(self) -> str:
        return self._group.target_type

    @property
    def has_load_balancer(self) -> bool:
        """A listener or rule of some load balancer forwards to it (weight 0 included)."""
        if self._group.load_balancer_arns:
            return True
        for balancer in self._backend.load_balancers.values():
            for listener in balancer.listeners.values():
                rule_actions = [a for rule in listener.rules.values() for a in rule.actions]
                for action in list(listener.default_actions) + rule_actions:
                    if self.arn in _forwarded_to(action.data):
                        return True
        return False

    @property
    def deregistration_delay(self) -> float:
        """The attribute as last set (moto keeps the request's string), else AWS's default."""
        value = self._group.attributes.get(DEREGISTRATION_DELAY, DEFAULT_DEREGISTRATION_DELAY)
        return float(value)

    def register(self, target_id: str, port: int) -> None:
        self._group.register([{"Id": target_id, "Port": port}])

    def set_health(
        self, target_id: str, state: str, reason: str | None, description: str | None
    ) -> None:
        """What DescribeTargetHealth reports for this target from now on."""
        _install_health(self._group)[target_id] = (state, reason, description)

    def deregister(self, target_id: str) -> None:
        """Gone from the group (DescribeTargetHealth on it says ``unused``, as in AWS); a target
        someone deregistered by hand is simply forgotten."""
        getattr(self._group, _HEALTH, {}).pop(target_id, None)
        if target_id in self._group.targets:
            self._group.deregister([{"Id": target_id}])


def find_target_group(arn: str) -> TargetGroupHandle | None:
    """The target group behind an ARN, in the ARN's account and region, if moto has it."""
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return None
    _, _, _, region, account_id, _ = parts
    regions = elbv2_backends.get(account_id)
    if regions is None or region not in regions:
        return None
    backend = regions[region]
    target_group = backend.target_groups.get(arn)
    return TargetGroupHandle(target_group, backend) if target_group is not None else None


@dataclass(frozen=True)
class Listener:
    """A listener that forwards: per rule with a forward action (its default action
    included), the target groups it forwards to and their weights."""

    load_balancer_arn: str
    arn: str
    routes: list[dict[str, float]]


def forwarding_listeners() -> Iterator[Listener]:
    """Every listener of every account and region with at least one forward action."""
    for regions in list(elbv2_backends.values()):
        for backend in list(regions.values()):
            for balancer in list(backend.load_balancers.values()):
                for listener in list(balancer.listeners.values()):
                    routes = [
                        _weights(action.data)
                        for rule in listener.rules.values()
                        for action in rule.actions
                        if action.data.get("Type") == "forward"
                    ]
                    if routes:
                        yield Listener(balancer.arn, listener.arn, routes)


def _weights(action: dict[str, Any]) -> dict[str, float]:
    """Target group -> weight of one forward action (a plain one forwards all to its group)."""
    weighted = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if weighted:
        return {g["TargetGroupArn"]: float(g.get("Weight", 1)) for g in weighted}
    return {action["TargetGroupArn"]: 1.0} if action.get("TargetGroupArn") else {}


def _forwarded_to(action: dict[str, Any]) -> list[str]:
    """The target groups a forward action (simple or weighted) sends to."""
    if action.get("Type") != "forward":
        return []
    weighted = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    arns = [action.get("TargetGroupArn")] + [group.get("TargetGroupArn") for group in weighted]
    return [arn for arn in arns if arn]


def _install_health(target_group: Any) -> dict[str, tuple[str, str | None, str | None]]:
    """Give this target group a ``health_for`` that answers the scheduler's states."""
    if _HEALTH not in vars(target_group):
        states: dict[str, tuple[str, str | None, str | None]] = {}
        moto_health_for = target_group.health_for

        def health_for(target: dict[str, Any], ec2_backend: Any) -> Any:
            registered = target_group.targets.get(target["Id"])
            state = states.get(target["Id"])
            if registered is None or state is None:
                return moto_health_for(target, ec2_backend)
            return FakeHealthStatus(
                registered["Id"], registered["Port"], target_group.health_check_port, *state
            )

        setattr(target_group, _HEALTH, states)
        target_group.health_for = health_for
    return getattr(target_group, _HEALTH)
