"""Inputs of the activities around the ECS service: its listener rule (ELBv2) and its scalable
target (Application Auto Scaling). Each is located like an ECS call (cluster, service, stage),
so its log lines are found with the deployment's."""

from __future__ import annotations

from typing import Any

from ecs_canary.models import ServiceLocation
from ecs_canary.scaling import SuspendedState
from ecs_canary.traffic import ListenerRule


class ReadListenerRuleInput(ServiceLocation):
    rule_arn: str
    # Checked to exist before anything changes.
    canary_target_group_arn: str
    baseline_target_group_arn: str | None = None


class SetRuleActionsInput(ServiceLocation):
    rule: ListenerRule
    actions: list[dict[str, Any]]
    # Putting the recorded actions back: a rule or listener deleted since has nothing to
    # restore, which is logged, not failed.
    restoring: bool = False
    # How the log says it, e.g. "my-tg 90 %, canary-tg 10 %".
    description: str


class SetSuspendedStateInput(ServiceLocation):
    resource_id: str
    suspended: SuspendedState
    description: str
