"""ELBv2 activities of a traffic-weighted canary: read the listener rule before anything
changes, and set its actions (the canary's weights, then the recorded actions back).

A listener's default actions are a rule too (DescribeRules says `IsDefault`), but only
ModifyListener changes them: the rule ARN the request names decides which call is made.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from activities.aws import AwsClients, aws_error_code, aws_errors
from activities.cancellation import sync_activity
from activities.polling import activity_logger
from ecs_canary.aws_inputs import ReadListenerRuleInput, SetRuleActionsInput
from ecs_canary.traffic import ListenerRule, listener_arn_of

# What ELBv2 answers for a rule or listener deleted since it was recorded.
_GONE = frozenset({"RuleNotFound", "ListenerNotFound"})


class LoadBalancerActivities:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @sync_activity
    def read_listener_rule(self, request: ReadListenerRuleInput) -> ListenerRule:
        """The rule and its actions as they are now (what the run puts back), after checking
        that the canary's (and the baseline's) target group exists: both fail before anything
        changes."""
        client = self._clients.elbv2(request.region)
        groups = [request.canary_target_group_arn]
        if request.baseline_target_group_arn is not None:
            groups.append(request.baseline_target_group_arn)
        with aws_errors("DescribeTargetGroups"):
            client.describe_target_groups(TargetGroupArns=groups)
        with aws_errors("DescribeRules"):
            (rule,) = client.describe_rules(RuleArns=[request.rule_arn])["Rules"]
        return ListenerRule(
            rule_arn=rule["RuleArn"],
            listener_arn=listener_arn_of(rule["RuleArn"]),
            is_default=bool(rule.get("IsDefault")),
            actions=rule["Actions"],
        )

    @sync_activity
    def set_rule_actions(self, request: SetRuleActionsInput) -> None:
        """Replace the rule's actions (a listener's default actions for its default rule).
        The call sets the whole list, so making it again changes nothing."""
        log = activity_logger(request)
        rule = request.rule
        what = (
            f"default actions of listener {rule.listener_arn}"
            if rule.is_default
            else f"listener rule {rule.rule_arn}"
        )
        verb = "Restoring" if request.restoring else "Setting"
        log.info(f"{verb} the {what}: {request.description}")
        client = self._clients.elbv2(request.region)
        try:
            self._modify(client, rule, request.actions)
        except botocore.exceptions.ClientError as err:
            if request.restoring and aws_error_code(err) in _GONE:
                log.warning(f"The {what} no longer exists: nothing to restore")
                return
            operation = "ModifyListener" if rule.is_default else "ModifyRule"
            with aws_errors(operation):
                raise

    @staticmethod
    def _modify(client: Any, rule: ListenerRule, actions: list[dict[str, Any]]) -> None:
        if rule.is_default:
            client.modify_listener(ListenerArn=rule.listener_arn, DefaultActions=actions)
        else:
            client.modify_rule(RuleArn=rule.rule_arn, Actions=actions)
