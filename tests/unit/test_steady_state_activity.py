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
    """ListTasks/DescribeTasks answering with the given stopped tasks, and the Service
    Deployments API with the given records; records the calls."""

    def __init__(
        self,
        stopped: list[dict[str, Any]] | None = None,
        records: list[dict[str, Any]] | None = None,
    ) -> None:
        self.stopped = stopped or []
        self.records = records or []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_service_deployments(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("ListServiceDeployments", params))
        return {"serviceDeployments": self.records}

    def describe_service_deployments(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("DescribeServiceDeployments", params))
        arns = params["serviceDeploymentArns"]
        return {
            "serviceDeployments": [r for r in self.records if r["serviceDeploymentArn"] in arns]
        }

    def list_tasks(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("ListTasks", params))
        started = [task for task in self.stopped if task["startedBy"] == params["startedBy"]]
        return {"taskArns": [task["taskArn"] for task in started]}

    def describe_tasks(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("DescribeTasks", params))
        return {"tasks": [t for t in self.stopped if t["taskArn"] in params["tasks"]]}


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, line: str) -> None:
        self.lines.append(line)

    warning = info


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
    # ECS's record is asked first (it has none here), then the stopped tasks.
    assert [name for name, _ in client.calls] == [
        "ListServiceDeployments",
        "ListTasks",
        "DescribeTasks",
    ]
    assert client.calls[1] == (
        "ListTasks",
        {"cluster": "ecs-canary", "startedBy": primary, "desiredStatus": "STOPPED"},
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


@pytest.mark.parametrize("name", ["inactive", "missing"])
def test_a_service_that_is_gone_makes_no_ecs_call(name):
    client = FakeEcs([_stopped("ecs-svc/x", NOPULL, 1)])
    failure = _failure(load(name), client)
    assert failure.type == "ServiceGone"
    assert client.calls == []


SERVICE_DEPLOYMENT = "arn:aws:ecs:us-east-1:123456789012:service-deployment/ecs-canary/rb/r9i43Y"


def _record(status: str, created_at: datetime, **more: Any) -> dict[str, Any]:
    return {
        "serviceDeploymentArn": SERVICE_DEPLOYMENT,
        "status": status,
        "createdAt": created_at,
        "statusReason": "ECS deployment circuit breaker: tasks failed to start.",
        **more,
    }


def test_a_rollback_is_named_by_ecs_record_found_by_its_arn():
    """One DescribeServiceDeployments at the wait's end, of the ARN the update reported."""
    record = _record(
        "ROLLBACK_SUCCESSFUL", datetime(2026, 1, 1, tzinfo=UTC), rollback={"reason": "breaker"}
    )
    client = FakeEcs(records=[record])
    with pytest.raises(ApplicationError) as caught:
        _poll(load("rolled-back"), client, service_deployment_arn=SERVICE_DEPLOYMENT)
    assert caught.value.type == "DeploymentRolledBack"
    assert caught.value.message == (
        f"ECS rolled back service deployment {SERVICE_DEPLOYMENT} of service "
        f"{load('rolled-back').service_name} (ROLLBACK_SUCCESSFUL): ECS deployment circuit "
        "breaker: tasks failed to start.; breaker"
    )
    assert client.calls == [
        ("DescribeServiceDeployments", {"serviceDeploymentArns": [SERVICE_DEPLOYMENT]})
    ]


def test_a_replaced_deployment_is_not_called_a_rollback():
    """DescribeServices shows only that another revision is primary; ECS's record, found by
    ListServiceDeployments beside this run's deployment, says it was STOPPED."""
    since = datetime(2026, 1, 1, tzinfo=UTC)
    client = FakeEcs(records=[_record("STOPPED", since, statusReason="A newer one started.")])
    failure = _failure(load("rolled-back"), client)
    assert failure.type == "DeploymentFailed"
    assert failure.message.startswith(f"ECS stopped service deployment {SERVICE_DEPLOYMENT}")
    assert failure.message.endswith("(STOPPED): A newer one started.")
    assert [name for name, _ in client.calls] == ["ListServiceDeployments"]


def test_without_ecs_records_describe_services_verdict_stands():
    client = FakeEcs()
    failure = _failure(load("rolled-back"), client)
    assert failure.type == "DeploymentRolledBack"
    assert failure.message.startswith("ECS rolled back service ")
    assert [name for name, _ in client.calls] == ["ListServiceDeployments"]


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
