"""What people read about a run (failure wording, decisions, Web UI details) and the run state's
stage timings: pure functions of the workflow, tested without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError, TimeoutType

from ecs_canary.gate import Gate
from ecs_canary.models import (
    Decision,
    DecisionInput,
    DeploymentRequest,
    Outcome,
    Stage,
    SteadyState,
    VerificationSettings,
)
from ecs_canary.steps import StepState
from workflows.failures import failure_reason
from workflows.presentation import current_details, decision_text, log_context
from workflows.state import DeploymentState

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
REQUEST = DeploymentRequest.model_validate(
    {
        "cluster": "prod",
        "service_name": "myapp",
        "task_definition": {
            "family": "myapp-task",
            "containerDefinitions": [{"name": "web", "image": "nginx:1.27"}],
        },
        "service_definition": {"desiredCount": 3},
    }
)


def _activity_error(cause: BaseException) -> ActivityError:
    error = ActivityError(
        "Activity task failed",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type="wait_for_steady_state",
        activity_id="3",
        retry_state=None,
    )
    error.__cause__ = cause
    return error


def test_a_failure_names_the_aws_code_or_verdict_under_the_activity_error():
    cause = ApplicationError("2 task(s) of service myapp failed to start", type="TasksFailed")
    assert failure_reason(_activity_error(cause)) == (
        "TasksFailed",
        "2 task(s) of service myapp failed to start",
    )


def test_a_timed_out_activity_says_which_timeout():
    cause = TimeoutError("timed out", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[])
    assert failure_reason(_activity_error(cause)) == ("Timeout", "timed out (START_TO_CLOSE)")


def test_any_other_error_keeps_its_own_type_and_text():
    assert failure_reason(KeyError("services")) == ("KeyError", "'services'")


def test_a_decision_reads_as_action_channel_person_and_reason():
    decision = Decision(action="reject", by="alice", reason="error rate up", at=NOW, via="update")
    assert decision_text(decision) == "reject (update) by alice: error rate up"
    anonymous = decision.model_copy(update={"by": None, "reason": None, "via": "timeout"})
    assert decision_text(anonymous) == "reject (timeout)"
    assert decision_text(None) is None


def test_web_ui_details_show_the_approve_command_only_while_the_gate_is_open():
    state, gate = DeploymentState(stage=Stage.VERIFICATION), Gate()
    gate.configure(VerificationSettings())
    state.saw(SteadyState(running_count=1, desired_count=1, deployment_id="d", recent_events=["e"]))
    gate.open(NOW)
    details = current_details(REQUEST, state, gate, "ecs-canary/prod/myapp", NOW)
    assert "**Running:** 1/1" in details and "**Last ECS event:** e" in details
    assert "--workflow-id ecs-canary/prod/myapp --name approve" in details

    gate.offer("approve", DecisionInput(by="alice"), "signal", NOW)
    details = current_details(REQUEST, state, gate, "ecs-canary/prod/myapp", NOW)
    assert "Gate open" not in details
    assert "**Decision:** approve (signal) by alice" in details


def test_web_ui_details_give_the_deadline_as_a_time_and_the_approvals_so_far():
    """Drawn at a workflow task and shown until the next one: an instant, never a countdown."""
    state, gate = DeploymentState(stage=Stage.VERIFICATION), Gate()
    gate.configure(
        VerificationSettings(timeout_seconds=570, min_approvals=2, approvers=["alice", "bob"])
    )
    baking = Gate()
    baking.configure(VerificationSettings(bake_seconds=90))
    baking.start_bake(NOW)
    assert "**Bake:** until 12:01:30 UTC" in current_details(REQUEST, state, baking, "wf", NOW)

    gate.open(NOW)

    details = current_details(REQUEST, state, gate, "wf", NOW).split("\n\n")
    assert details[1].startswith(
        "**Gate open:** decide by 12:09:30 UTC (no decision by then: reject); approve with "
    )
    assert details[2] == "**Approvals:** none yet (0 of 2)"
    assert not any("left" in line for line in details)
    named = current_details(REQUEST, state, gate, "wf", NOW, run_id="r1")
    assert "`temporal workflow update execute --workflow-id wf --run-id r1 --name approve" in named

    gate.offer("approve", DecisionInput(by="alice"), "update", NOW + timedelta(minutes=5))
    later = current_details(REQUEST, state, gate, "wf", NOW + timedelta(minutes=5))
    assert "**Approvals:** alice (1 of 2)" in later
    assert "decide by 12:09:30 UTC" in later
    # A gate that waits past midnight says on which day it ends.
    tomorrow = current_details(REQUEST, state, gate, "wf", NOW - timedelta(hours=12, minutes=1))
    assert "decide by 2026-12-02 12:09:30 UTC" in tomorrow


def test_web_ui_details_say_since_when_a_step_runs():
    state = DeploymentState(stage=Stage.VERIFICATION)
    state.verification_steps = [
        StepState(name="smoke", type="run_task", state="running", started_at=NOW),
        StepState(name="health", type="http", state="passed", summary="10 ok"),
        StepState(name="errors", type="metrics"),
    ]
    details = current_details(REQUEST, state, Gate(), "wf", NOW + timedelta(seconds=30))
    assert "**Verify smoke (run_task):** running since 12:00:00 UTC" in details
    assert "**Verify health (http):** passed: 10 ok" in details
    assert "**Verify errors (metrics):** pending" in details


def test_log_context_names_the_deployment_and_its_stage():
    state = DeploymentState(stage=Stage.ROLLBACK)
    assert log_context(REQUEST, state, "wf") == {
        "cluster": "prod",
        "service": "myapp",
        "stage": "rollback",
        "workflow_id": "wf",
    }


def test_entering_a_stage_closes_the_previous_ones_timing():
    state = DeploymentState()
    state.enter(Stage.CANARY_DEPLOY, NOW)
    state.enter(Stage.VERIFICATION, NOW + timedelta(seconds=30))
    state.enter(Stage.FINISHED, NOW + timedelta(seconds=45))
    assert [(t.stage, t.started_at, t.ended_at) for t in state.stages] == [
        (Stage.CANARY_DEPLOY, NOW, NOW + timedelta(seconds=30)),
        (Stage.VERIFICATION, NOW + timedelta(seconds=30), NOW + timedelta(seconds=45)),
    ]
    assert state.stage == Stage.FINISHED


def test_the_result_reports_the_canary_gone_when_it_was_never_created_or_was_deleted():
    state = DeploymentState(outcome=Outcome.REJECTED)
    assert state.result(REQUEST, Gate(), "rejected").canary_deleted
    state.canary_may_exist = True
    assert not state.result(REQUEST, Gate(), None).canary_deleted
    state.canary_may_exist, state.canary_deleted = False, True
    assert state.result(REQUEST, Gate(), None).canary_deleted
