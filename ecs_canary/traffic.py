"""A traffic-weighted canary: the request's `canary.traffic`, what the workflow records of the
listener rule, and the pure rules that turn the recorded forward action into a weighted one.

The canary registers only in its own target group; once it is healthy the rule's forward
action sends `100 - w` % to the group(s) it forwarded to and `w` % to the canary's, and before
the canary is deleted the rule's actions are put back exactly as recorded. With canary analysis
a baseline of the old version registers in a group of its own as well and gets the same `w` %
as the canary: the recorded groups share `100 - 2w` %. Kept apart from the
workflow and the ELB calls so the weight math and the refusals read and test on their own.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import Field

from ecs_canary.strict import StrictModel

_ELB_ARN = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"
# Weighted target groups exist for Application Load Balancers only.
LISTENER_RULE_ARN = _ELB_ARN + r"listener-rule/app/[^/]+/[^/]+/[^/]+/[^/]+$"
TARGET_GROUP_ARN = _ELB_ARN + r"targetgroup/[A-Za-z0-9-]{1,32}/[^/]+$"
FORWARD = "forward"


class TrafficSettings(StrictModel):
    """`canary.traffic`: which rule to weight, the canary's own target group, its share."""

    listener_rule_arn: str = Field(pattern=LISTENER_RULE_ARN)
    canary_target_group_arn: str = Field(pattern=TARGET_GROUP_ARN)
    weight_percent: int = Field(ge=1, le=100)


class ListenerRule(StrictModel):
    """A listener rule as DescribeRules answered: `is_default` rules are the listener's default
    actions, changed with ModifyListener on `listener_arn`."""

    rule_arn: str
    listener_arn: str
    is_default: bool
    actions: list[dict[str, Any]]


class TrafficState(StrictModel):
    """What `status` shows of the weighted canary: the rule, its recorded actions, the weight
    per target group now (percent), and whether the canary's weight is in force."""

    rule: ListenerRule
    canary_target_group_arn: str
    weights: dict[str, float]
    shifted: bool = False
    # The baseline's own group (canary analysis), weighted like the canary's.
    baseline_target_group_arn: str | None = None


def listener_arn_of(rule_arn: str) -> str:
    """`...:listener-rule/app/lb/1/2/3` -> `...:listener/app/lb/1/2`: the rule's listener."""
    prefix, path = rule_arn.split(":listener-rule/", 1)
    return f"{prefix}:listener/{path.rsplit('/', 1)[0]}"


def target_group_name(arn: str) -> str:
    """`...:targetgroup/my-tg/50dc6c495c0c9188` -> `my-tg`."""
    return arn.split(":targetgroup/", 1)[-1].split("/", 1)[0]


def _forward_action(actions: list[dict[str, Any]]) -> dict[str, Any] | None:
    forwards = [action for action in actions if action.get("Type") == FORWARD]
    return forwards[0] if len(forwards) == 1 else None


def forward_weights(actions: list[dict[str, Any]]) -> dict[str, int]:
    """Target group ARN -> weight in the rule's forward action; a plain `TargetGroupArn`
    forward weighs 1. Empty when the actions hold no single forward action."""
    forward = _forward_action(actions)
    if forward is None:
        return {}
    groups = (forward.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {group["TargetGroupArn"]: int(group.get("Weight", 1)) for group in groups}
    return {forward["TargetGroupArn"]: 1} if forward.get("TargetGroupArn") else {}


def percents(weights: dict[str, int]) -> dict[str, float]:
    total = sum(weights.values())
    return {arn: 100.0 * weight / total if total else 0.0 for arn, weight in weights.items()}


def _own_groups(canary: str, baseline: str | None) -> dict[str, str]:
    """The run's own target groups by whose they are: the canary's, and the baseline's."""
    return {"canary": canary, **({"baseline": baseline} if baseline is not None else {})}


def group_percents(
    actions: list[dict[str, Any]], canary: str, baseline: str | None = None
) -> dict[str, float]:
    """Each target group's percent of the rule's traffic, the canary's (and the baseline's)
    group included (0 % while the rule does not forward to it)."""
    shares = percents(forward_weights(actions))
    own = _own_groups(canary, baseline).values()
    return {**shares, **{arn: shares.get(arn, 0.0) for arn in own}}


def traffic_refusal(
    rule: ListenerRule, settings: TrafficSettings, baseline: str | None = None
) -> str | None:
    """Why this rule cannot carry the weighted canary (and baseline), or None. Refused before
    anything changes: a rule that already sends traffic to the canary's or the baseline's
    group was probably left so by an earlier run, and "putting it back" would keep that
    traffic."""
    weights = forward_weights(rule.actions)
    own = _own_groups(settings.canary_target_group_arn, baseline)
    if not weights:
        return f"listener rule {rule.rule_arn} has no single forward action to weight"
    for whose, arn in own.items():
        if weights.get(arn, 0) > 0:
            return (
                f"listener rule {rule.rule_arn} already forwards "
                f"{percents(weights)[arn]:.0f} % to the {whose}'s target group "
                f"{target_group_name(arn)}; put its actions back before deploying"
            )
    if not any(weight for arn, weight in weights.items() if arn not in own.values()):
        whose = " and ".join(f"the {name}'s" for name in own)
        return f"listener rule {rule.rule_arn} forwards to no target group but {whose}"
    return None


def canary_weights(
    recorded: dict[str, int], canary: str, weight_percent: int, baseline: str | None = None
) -> dict[str, int]:
    """The recorded groups share `100 - w` (`100 - 2w` beside a baseline) in proportion to
    their recorded weights (largest remainder, so the integers add up); the canary's group
    gets `w`, and so does the baseline's."""
    own = _own_groups(canary, baseline)
    others = {
        arn: weight for arn, weight in recorded.items() if arn not in own.values() and weight > 0
    }
    share = 100 - weight_percent * len(own)
    total = sum(others.values())
    exact = {arn: share * weight / total for arn, weight in others.items()}
    weights = {arn: int(value) for arn, value in exact.items()}
    by_remainder = sorted(exact, key=lambda arn: exact[arn] - weights[arn], reverse=True)
    for arn in by_remainder[: share - sum(weights.values())]:
        weights[arn] += 1
    return {**weights, **{arn: weight_percent for arn in own.values()}}


def weighted_actions(
    actions: list[dict[str, Any]], canary: str, weight_percent: int, baseline: str | None = None
) -> list[dict[str, Any]]:
    """The recorded actions with the forward action weighted for the canary (and baseline);
    every other action (authentication, ...), the forward action's `Order` and its stickiness
    stay."""
    weights = canary_weights(forward_weights(actions), canary, weight_percent, baseline)
    weighted = copy.deepcopy(actions)
    forward = _forward_action(weighted)
    assert forward is not None, "traffic_refusal accepted the rule"
    stickiness = (forward.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")
    forward.pop("TargetGroupArn", None)
    forward["ForwardConfig"] = {
        "TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights.items()],
        **({"TargetGroupStickinessConfig": stickiness} if stickiness else {}),
    }
    return weighted


def canary_load_balancers(
    load_balancers: list[dict[str, Any]], rule: ListenerRule, canary: str
) -> list[dict[str, Any]]:
    """The canary's `loadBalancers`: the main service's entry for a group the rule forwards to
    (else its first), pointed at the canary's target group, so it registers there only. The
    baseline's are made the same way, pointed at its own group."""
    forwarded = forward_weights(rule.actions)
    entry = next(
        (lb for lb in load_balancers if lb.get("targetGroupArn") in forwarded), load_balancers[0]
    )
    kept = {key: value for key, value in entry.items() if key != "loadBalancerName"}
    return [{**kept, "targetGroupArn": canary}]


def weights_text(weights: dict[str, float]) -> str:
    """`my-tg 90 %, canary-tg 10 %`."""
    return ", ".join(f"{target_group_name(arn)} {pct:.0f} %" for arn, pct in weights.items())
