"""CloudWatch alarm activities: watch the alarms that guard a canary."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from activities.aws import AwsClients, aws_errors
from activities.cancellation import sync_activity
from activities.polling import Heartbeats, activity_logger, sleep_until_next_poll
from ecs_canary.models import AlarmFiring, AlarmsInput, WatchAlarmsInput


def firing_alarm(cloudwatch: Any, names: list[str]) -> AlarmFiring | None:
    """The first of `names` in ALARM, or None. A name CloudWatch does not know is an error:
    a typo must not silently switch a guard off."""
    with aws_errors("DescribeAlarms"):
        response = cloudwatch.describe_alarms(AlarmNames=names)
    alarms = response.get("MetricAlarms", []) + response.get("CompositeAlarms", [])
    missing = sorted(set(names) - {a["AlarmName"] for a in alarms})
    if missing:
        raise ApplicationError(
            f"CloudWatch alarm(s) not found: {', '.join(missing)}",
            type="AlarmNotFound",
            non_retryable=True,
        )
    for alarm in alarms:
        if alarm["StateValue"] == "ALARM":
            return AlarmFiring(name=alarm["AlarmName"], reason=alarm.get("StateReason", ""))
    return None


class AlarmActivities:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @sync_activity
    def find_alarms(self, request: AlarmsInput) -> None:
        """AlarmNotFound unless every alarm exists: checked before anything changes, for
        alarms first watched after the rollout, where a typo would roll back a good one."""
        firing_alarm(self._clients.cloudwatch(request.region), request.alarms)

    @sync_activity
    def watch_alarms(self, request: WatchAlarmsInput) -> AlarmFiring:
        """Poll until one of the alarms is in ALARM; the workflow cancels it once the gate is
        decided otherwise."""
        log = activity_logger()
        cloudwatch = self._clients.cloudwatch(request.region)
        log.info("Watching CloudWatch alarms", alarms=request.alarms)
        heartbeats = Heartbeats()
        while True:
            firing = firing_alarm(cloudwatch, request.alarms)
            if firing is not None:
                log.warning(f"Alarm {firing.name} is in ALARM: {firing.reason}")
                return firing
            heartbeats.beat()
            sleep_until_next_poll(request.poll_interval_seconds)
