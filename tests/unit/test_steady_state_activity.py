"""What `wait_for_steady_state` makes of each decision, one poll at a time: the failure it
raises (with ECS's stoppedReasons), the lines it logs, and what it returns. The texts are a
public contract: operators read them and the end-to-end tests look for them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from temporalio.exceptions import ApplicationError

from activities.aws import AwsClients
from activities.ecs import EcsActivities
from ecs_canary.models import Stage, SteadyState, WaitProgress, WaitSteadyInput

from .recordings import Recording, load

NOPULL = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
    "resolve ref docker.io/library/nginx:nopull: not found"
)


class FakeEcs:
    """ListTasks/DescribeTasks answering with the given stopped tasks; records the calls."""

    def __init__(self, stopped: list[dict[str, Any]] | None = None) -> None:
        self.stopped = stopped or []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_tasks(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("ListTasks", params))
        return {"taskArns": [task["taskArn"] for task in self.stopped]}

    def describe_tasks(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("DescribeTasks", params))
        return {"tasks": [t for t in self.stopped if t["taskArn"] in params["tasks"]]}


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, line: str) -> None:
        self.lines.append(line)


def _wait_input(recording: Recording, **extra: Any) -> WaitSteadyInput:
    return WaitSteadyInput(
        region="us-east-1",
        cluster="ecs-canary",
        service=recording.service_name,
        stage=Stage.CANARY_DEPLOY,
        poll_interval_seconds=1,
        timeout_seconds=60,
        events_since=datetime(2026, 1, 1, tzinfo=UTC),
        task_definition_arn=recording.run_task_definition_arn,
        max_failed_tasks=2,
        **extra,
    )


def _poll(
    recording: Recording,
    client: FakeEcs | None = None,
    progress: WaitProgress | None = None,
    log: Log | None = None,
    **extra: Any,
) -> SteadyState | None:
    activities = EcsActivities(cast(AwsClients, None))  # this step makes no client of its own
    return activities._steady_state(
        client or FakeEcs(),
        _wait_input(recording, **extra),
        recording.service,
        progress or WaitProgress(),
        log or Log(),
    )


def _failure(recording: Recording, client: FakeEcs | None = None) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        _poll(recording, client)
    assert caught.value.non_retryable
    return caught.value


def _stopped(deployment_id: str, reason: str, n: int) -> dict[str, Any]:
    return {
        "taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/ecs-canary/{deployment_id[-4:]}{n}",
        "startedBy": deployment_id,
        "stoppedReason": reason,
    }


def _primary_id(recording: Recording) -> str:
    assert recording.service is not None
    return str(recording.service["deployments"][0]["id"])


def test_a_failed_rollout_ends_with_its_stopped_tasks_reasons_sorted_once_each():
    recording = load("rollout-failed")
    primary = _primary_id(recording)
    client = FakeEcs(
        [
            _stopped(primary, NOPULL, 1),
            _stopped(primary, NOPULL, 2),
            _stopped(primary, "Essential container in task exited", 3),
            _stopped("ecs-svc/older", "Scaling activity initiated by (deployment x)", 4),
            {"taskArn": "no-reason", "startedBy": primary},
        ]
    )
    failure = _failure(recording, client)
    assert failure.type == "DeploymentFailed"
    assert failure.message == (
        f"ECS marked deployment {primary} of service breaker FAILED: ECS deployment circuit "
        f"breaker: tasks failed to start.: {NOPULL}; Essential container in task exited"
    )
    assert client.calls[0] == (
        "ListTasks",
        {"cluster": "ecs-canary", "serviceName": "breaker", "desiredStatus": "STOPPED"},
    )


def test_failed_tasks_end_with_their_reasons():
    recording = load("tasks-failed")
    primary = _primary_id(recording)
    failure = _failure(recording, FakeEcs([_stopped(primary, NOPULL, 1)]))
    assert failure.type == "TasksFailed"
    assert failure.message == f"2 task(s) of service nopull failed to start: {NOPULL}"


def test_without_stopped_tasks_the_message_ends_with_ecs_text():
    recording = load("tasks-failed")
    client = FakeEcs()
    failure = _failure(recording, client)
    assert failure.message == "2 task(s) of service nopull failed to start"
    assert [name for name, _ in client.calls] == ["ListTasks"]  # nothing to describe


@pytest.mark.parametrize(
    ("name", "failure_type"),
    [
        ("rolled-back", "DeploymentRolledBack"),
        ("inactive", "ServiceGone"),
        ("missing", "ServiceGone"),
    ],
)
def test_other_failures_make_no_ecs_call(name, failure_type):
    client = FakeEcs([_stopped("ecs-svc/x", NOPULL, 1)])
    failure = _failure(load(name), client)
    assert failure.type == failure_type
    assert client.calls == []


def test_progress_is_logged_once_per_change_then_the_steady_state():
    log, progress = Log(), WaitProgress()
    assert _poll(load("pending"), progress=progress, log=log) is None
    assert _poll(load("pending"), progress=progress, log=log) is None
    assert (progress.running_count, progress.desired_count) == (0, 2)
    steady = load("steady")
    done = "Created Service steady with Arn {arn}"
    result = _poll(steady, progress=progress, log=log, done_message=done)

    assert log.lines == [
        "Waiting for pending tasks to finish. 0/2 running ...",
        "Waiting for pending tasks to finish. 2/2 running ...",
        "Waiting for Service steady to reach steady state",
        "Service steady reached steady state",
        "Created Service steady with Arn "
        "arn:aws:ecs:us-east-1:123456789012:service/ecs-canary/steady",
    ]
    assert result == SteadyState(
        running_count=2, desired_count=2, deployment_id=_primary_id(steady), recent_events=[]
    )


def test_the_steady_wait_is_announced_once_while_deployments_drain():
    recording = load("rolling")
    assert recording.service is not None
    recording.service["deployments"][0]["runningCount"] = 2  # all new tasks run, old remain
    log, progress = Log(), WaitProgress()
    for _ in range(2):
        assert _poll(recording, progress=progress, log=log) is None
    assert log.lines == [
        "Waiting for pending tasks to finish. 2/2 running ...",
        "Waiting for Service rolling to reach steady state",
    ]
    assert progress.steady_wait_announced


def test_a_retried_wait_does_not_log_again_what_the_earlier_attempt_logged():
    earlier = WaitProgress(
        last_progress="Waiting for pending tasks to finish. 2/2 running ...",
        steady_wait_announced=True,
        recent_events=["# AWS Event: 2026-01-01 00:00:00.000 (service steady) started"],
    )
    log = Log()
    result = _poll(load("steady"), progress=earlier, log=log)
    assert log.lines == ["Service steady reached steady state"]
    assert result is not None and result.recent_events == earlier.recent_events
