"""Verification step activities: the checks that run, in order, against a steady canary.

Each returns the step's own verdict (`StepVerdict`); a failing check is a verdict, not an
error. Errors are for the infrastructure: AWS's, mapped by `activities.aws.aws_errors`
(transient ones retry, the rest fail at once with AWS's code). Each heartbeats while it runs,
stops promptly when cancelled (cleaning up first, then raising CancelledError), and enforces
the step's `timeout_seconds` itself, counted from its first attempt: past it, it cleans up and
returns a failed verdict "timed out after Ns".

Sync activities: the worker runs them in its thread pool, like `activities.ecs`.
"""

from __future__ import annotations

from activities.aws import AwsClients
from activities.cancellation import sync_activity
from activities.steps.http_check import HttpCheck
from activities.steps.metrics import MetricsCheck
from activities.steps.run_task import RunTaskStep
from ecs_canary.steps import HttpStepInput, MetricsStepInput, RunTaskStepInput, StepVerdict


class VerificationActivities:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients

    @sync_activity
    def run_task_step(self, request: RunTaskStepInput) -> StepVerdict:
        """Run the step's one-off ECS tasks (or follow those an earlier attempt started, found
        by `startedBy`) until all stopped. Passes when every essential container of every task
        exited 0; else names the task, container, exit code and ECS's stoppedReason. Cancelled
        or out of time, it stops the step's running tasks first."""
        return RunTaskStep(self._clients, request).run()

    @sync_activity
    def http_step(self, request: HttpStepInput) -> StepVerdict:
        """Send the step's requests one after another; fails once more than `max_failures`
        failed. The summary gives the counts, p50/p95 latency and the first failure."""
        return HttpCheck(request).run()

    @sync_activity
    def metrics_step(self, request: MetricsStepInput) -> StepVerdict:
        """Compare the canary's CloudWatch metric over the window with `max_value` and/or the
        main service's (see `activities.steps.metrics.aggregate` for how the window's datapoints
        make one value); `on_no_data` decides when the canary has none."""
        return MetricsCheck(self._clients, request).run()
