"""The steady-state decision and the service views, on DescribeServices answers recorded from
the ECS emulator (see recordings.py)."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest

from activities.steady_state import (
    DeploymentView,
    Failed,
    ServiceView,
    Steady,
    SteadyStateDecision,
    Waiting,
    decide_steady_state,
)

from .recordings import Recording, load, names

MAX_FAILED_TASKS = 2
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition"


def _decide(recording: Recording, max_failed_tasks: int = MAX_FAILED_TASKS) -> SteadyStateDecision:
    return decide_steady_state(
        recording.service,
        recording.service_name,
        recording.run_task_definition_arn,
        max_failed_tasks,
    )


def _primary_id(recording: Recording) -> str:
    assert recording.service is not None
    primary = ServiceView(recording.service).primary_deployment
    assert primary is not None
    return primary.id


def test_every_recording_is_a_describe_services_answer():
    assert set(names()) >= {
        "steady",
        "pending",
        "rolling",
        "rollout-failed",
        "rolled-back",
        "tasks-failed",
        "draining",
        "inactive",
        "missing",
    }
    for name in names():
        recording = load(name)
        assert recording.about
        assert set(recording.response) == {"services", "failures"}
        if recording.service is not None:
            assert recording.service["serviceName"] == recording.service_name
            for deployment in recording.service["deployments"]:
                assert isinstance(deployment["createdAt"], datetime)


def test_a_service_whose_only_deployment_runs_everything_and_completed_is_steady():
    recording = load("steady")
    assert _decide(recording) == Steady(running=2, desired=2, deployment_id=_primary_id(recording))


def test_a_new_service_with_pending_tasks_is_waiting():
    decision = _decide(load("pending"))
    assert decision == Waiting(running=0, desired=2)
    assert isinstance(decision, Waiting) and decision.tasks_pending


def test_a_rolling_update_waits_for_its_own_deployment_not_the_service_counts():
    """The service runs 2 of 2 (the old deployment's tasks); the new primary runs none."""
    recording = load("rolling")
    assert recording.service is not None
    assert (recording.service["runningCount"], recording.service["desiredCount"]) == (2, 2)
    assert _decide(recording) == Waiting(running=0, desired=2)


def test_all_tasks_running_is_not_steady_while_an_older_deployment_remains():
    """Real ECS drains the old deployment after the new one runs all its tasks (the emulator
    drops it at once, so this state is the rolling recording, brought forward)."""
    recording = load("rolling")
    assert recording.service is not None
    recording.service["deployments"][0]["runningCount"] = 2
    decision = _decide(recording)
    assert decision == Waiting(running=2, desired=2)
    assert isinstance(decision, Waiting) and not decision.tasks_pending


def test_all_tasks_running_is_not_steady_until_ecs_completes_the_rollout():
    recording = load("steady")
    assert recording.service is not None
    recording.service["deployments"][0]["rolloutState"] = "IN_PROGRESS"
    assert _decide(recording) == Waiting(running=2, desired=2)


def test_a_deployment_without_a_rollout_state_counts_as_completed():
    recording = load("steady")
    assert recording.service is not None
    del recording.service["deployments"][0]["rolloutState"]
    assert isinstance(_decide(recording), Steady)


def test_a_failed_rollout_fails_with_ecs_reason_before_counting_tasks():
    """The circuit breaker's FAILED says more than the failed-task count (4 here, over 2)."""
    recording = load("rollout-failed")
    primary_id = _primary_id(recording)
    assert _decide(recording) == Failed(
        "DeploymentFailed",
        f"ECS marked deployment {primary_id} of service breaker FAILED: "
        "ECS deployment circuit breaker: tasks failed to start.",
        stopped_tasks_of=primary_id,
    )


def test_a_rollback_by_ecs_fails_naming_what_the_service_runs_now():
    recording = load("rolled-back")
    assert _decide(recording) == Failed(
        "DeploymentRolledBack",
        f"ECS rolled back service rollback: its primary deployment runs {TD}/rollback:1, "
        f"not {TD}/rollback:2",
    )


def test_a_service_without_a_primary_deployment_counts_as_rolled_back():
    recording = load("steady")
    assert recording.service is not None
    recording.service["deployments"] = []
    decision = _decide(recording)
    assert isinstance(decision, Failed) and decision.failure_type == "DeploymentRolledBack"
    assert decision.message == (
        f"ECS rolled back service steady: its primary deployment runs nothing, not {TD}/steady:1"
    )


def test_failed_tasks_at_the_limit_fail_the_wait():
    recording = load("tasks-failed")
    primary_id = _primary_id(recording)
    assert _decide(recording, max_failed_tasks=2) == Failed(
        "TasksFailed",
        "2 task(s) of service nopull failed to start",
        stopped_tasks_of=primary_id,
    )


def test_failed_tasks_under_the_limit_keep_waiting():
    assert _decide(load("tasks-failed"), max_failed_tasks=3) == Waiting(running=0, desired=1)


def test_a_rolled_back_deployment_s_failed_tasks_are_not_counted_against_the_new_primary():
    recording = load("rolled-back")
    assert recording.service is not None
    view = ServiceView(recording.service)
    assert view.failed_tasks == 0
    assert [d.failed_tasks for d in view.deployments] == [0, 4, 0]


@pytest.mark.parametrize(
    ("name", "state"), [("draining", "DRAINING"), ("inactive", "INACTIVE"), ("missing", "missing")]
)
def test_a_service_that_is_gone_fails_the_wait(name, state):
    recording = load(name)
    assert _decide(recording) == Failed(
        "ServiceGone",
        f"Service {recording.service_name} is {state} while waiting for steady state",
    )


def test_only_failures_explained_by_stopped_tasks_ask_for_them():
    decisions = {name: _decide(load(name)) for name in names()}
    asking = {n for n, d in decisions.items() if isinstance(d, Failed) and d.stopped_tasks_of}
    assert asking == {"rollout-failed", "tasks-failed"}


def test_deciding_changes_nothing_in_the_answer():
    for name in names():
        recording = load(name)
        before = copy.deepcopy(recording.response)
        _decide(recording)
        assert recording.response == before


def test_the_service_view_reads_a_steady_service():
    recording = load("steady")
    assert recording.service is not None
    view = ServiceView(recording.service)
    assert (view.name, view.status, view.is_active) == ("steady", "ACTIVE", True)
    assert view.arn == "arn:aws:ecs:us-east-1:123456789012:service/ecs-canary/steady"
    assert (view.task_definition, view.running, view.desired) == (f"{TD}/steady:1", 2, 2)
    (deployment,) = view.deployments
    assert view.primary_deployment == deployment
    assert not view.is_rolled_back(f"{TD}/steady:1")
    assert view.is_rolled_back(f"{TD}/steady:2")


def test_the_service_view_tells_the_primary_deployment_from_older_ones():
    recording = load("rolling")
    assert recording.service is not None
    view = ServiceView(recording.service)
    primary, older = view.deployments
    assert (primary.status, older.status) == ("PRIMARY", "ACTIVE")
    assert view.primary_deployment == primary
    assert (primary.task_definition, older.task_definition) == (
        f"{TD}/rolling:2",
        f"{TD}/rolling:1",
    )
    assert (primary.rollout_state, primary.rollout_completed) == ("IN_PROGRESS", False)
    assert (older.rollout_state, older.rollout_completed) == ("COMPLETED", True)
    assert (primary.running, primary.desired, older.running, older.desired) == (0, 2, 2, 2)


def test_the_deployment_view_reads_ecs_fields_and_defaults():
    recording = load("rollout-failed")
    assert recording.service is not None
    failed = DeploymentView(recording.service["deployments"][0])
    assert failed.id.startswith("ecs-svc/")
    assert failed.rollout_state == "FAILED"
    assert failed.rollout_state_reason == "ECS deployment circuit breaker: tasks failed to start."
    assert failed.failed_tasks == 4
    assert isinstance(failed.created_at, datetime)
    bare = DeploymentView(
        {"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": "td:1", "runningCount": 1,
         "desiredCount": 1}
    )  # fmt: skip
    assert (bare.failed_tasks, bare.rollout_state, bare.rollout_state_reason) == (0, None, "")
    assert bare.created_at is None and bare.rollout_completed


def test_an_inactive_service_view_is_not_active():
    recording = load("inactive")
    assert recording.service is not None
    view = ServiceView(recording.service)
    assert (view.status, view.is_active, view.desired) == ("INACTIVE", False, 0)
