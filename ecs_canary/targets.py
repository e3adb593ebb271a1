"""A deployment's targets behind its load balancers, and its share of the traffic, in words.

A wait for steady state counts, per target group of the service, this deployment's healthy
targets among every healthy one (DescribeTargetHealth). The canary's share of a group's
traffic is its share of the group's healthy targets (how Harness's canary gets traffic: it
joins the main service's groups), times the group's share of the listener rule's traffic
(100 % unless the rule is weighted): `1 of 4 healthy targets in my-tg, ~25 %`.
"""

from __future__ import annotations

from ecs_canary.strict import StrictModel
from ecs_canary.traffic import target_group_name


class TargetCount(StrictModel):
    """One target group as a wait last saw it."""

    target_group_arn: str
    # This deployment's running tasks, and how many of them have a healthy target here.
    tasks: int
    healthy: int
    # Every healthy target of the group: this deployment's and everyone else's.
    healthy_in_group: int

    @property
    def all_healthy(self) -> bool:
        return self.healthy == self.tasks


def share_percent(count: TargetCount, group_percent: float = 100.0) -> float:
    """The deployment's share of the traffic reaching it through this group."""
    if not count.healthy_in_group:
        return 0.0
    return group_percent * count.healthy / count.healthy_in_group


def target_share_text(count: TargetCount, group_percent: float = 100.0) -> str:
    """`1 of 4 healthy targets in my-tg, ~25 %`."""
    share = share_percent(count, group_percent)
    return (
        f"{count.healthy} of {count.healthy_in_group} healthy targets in "
        f"{target_group_name(count.target_group_arn)}, ~{share:.0f} %"
    )


def targets_text(counts: list[TargetCount], group_percents: dict[str, float]) -> str:
    """Every group's share, `; `-separated; a group missing from `group_percents` takes all
    of its traffic (it is not one of a weighted rule's groups)."""
    return "; ".join(
        target_share_text(count, group_percents.get(count.target_group_arn, 100.0))
        for count in counts
    )
