"""The traffic-weighted canary's listener rule, as the workflow handles it.

Read (and recorded in the run's state) before anything changes; weighted once the canary (and
canary analysis's baseline, which gets the same weight) is healthy, for the verification
stage; put back exactly as recorded before the canary is deleted, on every path: approve and
reject (Canary Delete), failure and cancel (the cleanup path). Setting the recorded actions
again changes nothing, so the restore may run twice. A rule that cannot be put back keeps the
canary running: deleting it would leave the rule sending its share to an empty target group.
The rules themselves: ecs_canary.traffic.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.load_balancers import LoadBalancerActivities
    from ecs_canary.aws_inputs import ReadListenerRuleInput, SetRuleActionsInput
    from ecs_canary.baseline import baseline_target_group
    from ecs_canary.traffic import (
        ListenerRule,
        TrafficSettings,
        TrafficState,
        group_percents,
        weighted_actions,
        weights_text,
    )
    from workflows.presentation import failure_reason
    from workflows.run_part import RunPart


class TrafficShift(RunPart):
    """One run's listener rule; every method is a no-op without `canary.traffic`."""

    @property
    def _traffic_settings(self) -> TrafficSettings | None:
        return self._request.canary.traffic

    @property
    def _baseline_group(self) -> str | None:
        return baseline_target_group(self._request.verification.analysis)

    async def read_rule(self) -> ListenerRule | None:
        """The rule as it is now, and a check that the canary's target group exists."""
        if self._traffic_settings is None:
            return None
        request = self._request
        return await self._calls.call(
            LoadBalancerActivities.read_listener_rule,
            ReadListenerRuleInput(
                **self._location(),
                rule_arn=self._traffic_settings.listener_rule_arn,
                canary_target_group_arn=self._traffic_settings.canary_target_group_arn,
                baseline_target_group_arn=self._baseline_group,
            ),
            summary=f"Read listener rule of {request.service_name}",
        )

    def record(self, rule: ListenerRule | None) -> None:
        """Remember the rule's actions: what every way out puts back."""
        if self._traffic_settings is None or rule is None:
            return
        canary, baseline = self._traffic_settings.canary_target_group_arn, self._baseline_group
        self._state.traffic = TrafficState(
            rule=rule,
            canary_target_group_arn=canary,
            baseline_target_group_arn=baseline,
            weights=group_percents(rule.actions, canary, baseline),
        )

    async def shift(self) -> None:
        """Give the canary's target group (and the baseline's) its weight. Marked shifted
        before the call, so a cancel that arrives while it is in flight still puts the rule
        back."""
        traffic, settings = self._state.traffic, self._traffic_settings
        if traffic is None or settings is None:
            return
        canary, baseline = settings.canary_target_group_arn, traffic.baseline_target_group_arn
        actions = weighted_actions(traffic.rule.actions, canary, settings.weight_percent, baseline)
        traffic.shifted = True
        weights = group_percents(actions, canary, baseline)
        await self._set(actions, weights_text(weights), restoring=False)
        traffic.weights = weights
        self._show()

    async def restore(self) -> None:
        """Put the recorded actions back, if the canary's weight may be in force."""
        traffic = self._state.traffic
        if traffic is None or not traffic.shifted:
            return
        recorded = group_percents(
            traffic.rule.actions, traffic.canary_target_group_arn, traffic.baseline_target_group_arn
        )
        await self._set(traffic.rule.actions, "as recorded", restoring=True)
        traffic.shifted, traffic.weights = False, recorded
        self._show()

    async def restore_on_the_way_out(self) -> str | None:
        """`restore` for the cleanup path: None once the rule is back, else why the canary
        must stay (the reason is logged and goes into the run's failure)."""
        try:
            await self.restore()
        except Exception as err:
            traffic = self._state.traffic
            assert traffic is not None, "only a recorded rule can fail to be restored"
            weights = weights_text(traffic.weights)
            request = self._request
            left = f"canary service {request.canary_service_name} was"
            if request.baseline_service_name is not None:
                left = (
                    f"canary service {request.canary_service_name} and baseline service "
                    f"{request.baseline_service_name} were"
                )
            stuck = (
                f"listener rule {traffic.rule.rule_arn} could not be put back "
                f"({failure_reason(err)[1]}) and still forwards {weights}, so {left} "
                "left running; put the rule's recorded actions (status: traffic.rule.actions) "
                "back and delete it"
            )
            workflow.logger.error(stuck)
            return stuck
        return None

    async def _set(self, actions: list[dict[str, Any]], text: str, *, restoring: bool) -> None:
        traffic = self._state.traffic
        assert traffic is not None
        verb = "Restore" if restoring else "Weight"
        await self._calls.call(
            LoadBalancerActivities.set_rule_actions,
            SetRuleActionsInput(
                **self._location(),
                rule=traffic.rule,
                actions=actions,
                restoring=restoring,
                description=text,
            ),
            summary=f"{verb} listener rule: {text}",
        )
