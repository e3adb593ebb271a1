"""The baseline of canary analysis: a fresh service of the old version beside the canary.

`verification.analysis` starts `<service_name>Baseline` together with the canary, from the main
service's current task definition (the run's rollback target) and at the canary's count, so
that the judge compares two services of the same age and size rather than the canary with a
primary that has run for days. It joins the canary's target groups, or with `canary.traffic` a
group of its own that the listener rule weights like the canary's; it is deleted with the
canary on every way out. Here: its name, what `status` shows of it, and the request's rules.
"""

from __future__ import annotations

import re

from pydantic import Field

from ecs_canary.analysis import AnalysisSettings
from ecs_canary.strict import StrictModel
from ecs_canary.targets import TargetCount, targets_text
from ecs_canary.traffic import TARGET_GROUP_ARN, TrafficSettings

BASELINE_SUFFIX = "Baseline"


class BaselineState(StrictModel):
    """`status.baseline`: the baseline service, its task definition (the main service's, as
    recorded for rollback), its tasks and targets as its last wait saw them, and whether
    this run has deleted it."""

    service: str
    task_definition_arn: str | None = None
    running_count: int | None = None
    desired_count: int | None = None
    targets: list[TargetCount] = Field(default_factory=list)
    deleted: bool = False


def baseline_service_name(service_name: str) -> str:
    return f"{service_name}{BASELINE_SUFFIX}"


def analysis_request_error(
    analysis: AnalysisSettings, traffic: TrafficSettings | None, canary_suffix: str
) -> str | None:
    """Why a request with canary analysis cannot run, or None: refused at validation, before
    the run changes anything."""
    if canary_suffix == BASELINE_SUFFIX:
        return f"canary.suffix must not be {BASELINE_SUFFIX!r}: that is the baseline's name"
    baseline_group = analysis.baseline_target_group_arn
    if traffic is None:
        if baseline_group is not None:
            return (
                "analysis.baseline_target_group_arn needs canary.traffic: without it the "
                "baseline joins the canary's target groups"
            )
        placeholders = [metric.name for metric in analysis.metrics if metric.uses_target_group()]
        if placeholders:
            return (
                f"analysis metric(s) {', '.join(placeholders)} use {{target_group}} or "
                "{load_balancer}, which need canary.traffic and "
                "analysis.baseline_target_group_arn: a target group of each service's own"
            )
        return None
    if baseline_group is None:
        return (
            "a traffic-weighted canary with analysis needs analysis.baseline_target_group_arn, "
            "the target group the baseline registers in"
        )
    if not re.match(TARGET_GROUP_ARN, baseline_group):
        return f"analysis.baseline_target_group_arn {baseline_group!r} is not a target group ARN"
    if baseline_group == traffic.canary_target_group_arn:
        return "analysis.baseline_target_group_arn must not be the canary's target group"
    if 2 * traffic.weight_percent > 100:
        return (
            f"canary.traffic.weight_percent is {traffic.weight_percent}, but the baseline gets "
            "the same weight as the canary: at most 50 with analysis"
        )
    return None


def baseline_text(baseline: BaselineState, group_percents: dict[str, float]) -> str:
    """`myappBaseline on myapp-task:1, 1/1 running; 1 of 2 healthy targets in myapp-tg, ~50 %`,
    or `myappBaseline deleted`: the baseline for the Web UI details and `starter.py status`."""
    if baseline.deleted:
        return f"{baseline.service} deleted"
    arn = baseline.task_definition_arn or ""
    text = f"{baseline.service} on {arn.rsplit('/', 1)[-1]}"
    if baseline.running_count is not None:
        text += f", {baseline.running_count}/{baseline.desired_count} running"
    if baseline.targets:
        text += f"; {targets_text(baseline.targets, group_percents)}"
    return text


def baseline_target_group(analysis: AnalysisSettings | None) -> str | None:
    """The baseline's own target group: set (and only allowed) with `canary.traffic`."""
    return analysis.baseline_target_group_arn if analysis is not None else None
