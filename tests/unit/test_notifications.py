"""Notifications without Temporal or a network: what a request may say in `notifications`, how
a receiver is named where it is shown, and what each event posts in each format."""

from __future__ import annotations

import json
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_canary.models import DeploymentStatus
from ecs_canary.notification_messages import (
    GateFacts,
    NotificationInput,
    RunLinks,
    body,
    decision_commands,
)
from ecs_canary.notifications import EVENTS, Notification, redact_url
from tests.helpers.statuses import deployment_status, finished_status

OPENED = datetime(2026, 3, 4, 13, 59, 30, tzinfo=UTC)
RUN = RunLinks(
    namespace="default",
    workflow_id="ecs-canary/prod/myapp",
    run_id="0195-run",
    web_ui="http://ui.example:8233/namespaces/default/workflows/ecs-canary%2Fprod%2Fmyapp/0195-run/history",
)
GATE = GateFacts(
    deadline=OPENED + timedelta(minutes=10),
    timeout_seconds=600,
    on_timeout="reject",
    min_approvals=2,
    approvers=["alice", "bob", "carol"],
)
SLACK_HOOK = "https://hooks.slack.com/services/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"


def _error(notification: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as invalid:
        Notification.model_validate(notification)
    (error,) = invalid.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


# --- The request field ----------------------------------------------------------------------


def test_the_issues_example_is_valid_and_events_default_to_all_three():
    slack = Notification.model_validate(
        {"url": "http://127.0.0.1:9000/hook", "format": "slack", "events": ["gate_open"]}
    )
    secret = Notification.model_validate({"url_env": "ECS_CANARY_WEBHOOK_DEPLOYS"})

    assert (slack.format, slack.events) == ("slack", ["gate_open"])
    assert (secret.format, secret.events) == ("json", list(EVENTS))
    assert list(EVENTS) == ["frozen", "gate_open", "decided", "finished"]


@pytest.mark.parametrize(
    "notification",
    [
        {"format": "json"},
        {"url": "https://hooks.example/x", "url_env": "ECS_CANARY_WEBHOOK_DEPLOYS"},
    ],
)
def test_exactly_one_of_url_and_url_env(notification):
    assert "give exactly one of url" in _error(notification)
    assert "url_env" in _error(notification)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example/x", "must start with http:// or https://"),
        ("hooks.example/x", "must start with http:// or https://"),
        ("https:///x", "has no host"),
        ("https://hooks.example/a b", "contains whitespace"),
        ("https://hooks.example:port/x", "is not a valid URL"),
    ],
)
def test_a_url_must_be_http_or_https(url, problem):
    assert _error({"url": url}).startswith(f"url: Value error, url {problem}")


def test_url_env_names_a_variable_not_a_url():
    error = _error({"url_env": "https://hooks.example/x"})
    assert error.startswith("url_env: Value error, url_env must name an environment variable")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"events": ["deployed"]},
            "events.0: Input should be 'frozen', 'gate_open', 'decided' or 'finished'",
        ),
        ({"events": []}, "events: List should have at least 1 item"),
        ({"events": ["decided", "decided"]}, "events lists decided more than once"),
        ({"format": "teams"}, "format: Input should be 'slack' or 'json'"),
        ({"headers": {}}, "headers: Extra inputs are not permitted"),
    ],
)
def test_events_and_format_are_checked(change, expected):
    assert expected in _error({"url": "https://hooks.example/x", **change})


# --- How a receiver is shown ----------------------------------------------------------------


def test_a_secret_url_is_named_by_its_variable():
    assert (
        Notification(url_env="ECS_CANARY_WEBHOOK_DEPLOYS").target == "$ECS_CANARY_WEBHOOK_DEPLOYS"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"),
        (SLACK_HOOK, "https://hooks.slack.com/services/***/***/***"),
        ("https://user:pw@hooks.example/v1/hook#x", "https://***@hooks.example/v1/hook"),
        (
            "https://hooks.example/hook?token=abc&channel=ops",
            "https://hooks.example/hook?token=***&channel=***",
        ),
        ("https://[::1]:8443/a-very-long-webhook-path-segment", "https://[::1]:8443/***"),
    ],
)
def test_a_url_is_shown_without_its_secret_looking_parts(url, shown):
    assert redact_url(url) == shown
    assert Notification(url=url).target == shown


# --- What each event posts ------------------------------------------------------------------


def _status(**changes: Any) -> DeploymentStatus:
    """At the open gate: alice has approved, one step passed and one failed."""
    status: dict[str, Any] = {
        "task_definition_arn": "arn:aws:ecs:us-east-1:123456789012:task-definition/myapp:42",
        "approvals": ["alice"],
        "stages": [{"stage": "canary_deploy", "started_at": OPENED - timedelta(minutes=2)}],
        "verification_steps": [
            {"name": "smoke", "type": "run_task", "state": "passed", "summary": "1 task passed"},
            {"name": "health", "type": "http", "state": "failed", "summary": "p95 <2s> & up"},
        ],
    }
    return deployment_status(**{**status, **changes})


def _posted(event: str, fmt: str, status: DeploymentStatus, gate: GateFacts | None = None):
    request = NotificationInput(
        notification=Notification(url="http://127.0.0.1:9000/hook", format=fmt),
        target_index=0,
        event=event,
        at=OPENED,
        status=status,
        gate=gate,
    )
    return body(request, RUN)


def _slack_text(posted: dict[str, Any]) -> str:
    assert set(posted) == {"text", "blocks"}
    texts = [block["text"]["text"] for block in posted["blocks"] if block["type"] == "section"]
    for block in posted["blocks"]:
        if block["type"] == "context":
            texts.extend(element["text"] for element in block["elements"])
    return "\n".join(texts)


def test_slack_gate_open_says_until_when_and_how_to_decide():
    posted = _posted("gate_open", "slack", _status(), GATE)
    text = _slack_text(posted)

    assert posted["text"] == "myapp: the canary waits for approval on prod"
    assert "myappCanary, 1/1 tasks running, task definition myapp:42" in text
    assert "• smoke (run_task) passed: 1 task passed" in text
    assert "• health (http) failed: p95 &lt;2s&gt; &amp; up" in text  # Slack's escaping
    assert "14:09:30 UTC (the gate waits 10m, then the canary is rejected)" in text
    assert "alice (1 of 2); may decide: alice, bob, carol" in text
    for action in ("approve", "reject"):
        for command in decision_commands(RUN, action):
            assert f"```{command}```" in text
    assert f"<{RUN.web_ui}|Open the run in the Temporal Web UI>" in text
    assert "Send an Update" in text


def test_the_commands_decide_in_the_name_of_whoever_pastes_them():
    approve_cli, approve_starter = decision_commands(RUN, "approve")
    reject_cli, _ = decision_commands(RUN, "reject")
    argv = _as_the_shell_reads(approve_cli, user="dana")

    assert argv[:4] == ["temporal", "workflow", "update", "execute"]
    assert argv[argv.index("--workflow-id") + 1] == "ecs-canary/prod/myapp"
    assert argv[argv.index("--run-id") + 1] == "0195-run"  # the decision is for this run
    assert argv[argv.index("--name") + 1] == "approve"
    assert json.loads(argv[argv.index("--input") + 1]) == {"by": "dana"}
    assert _as_the_shell_reads(approve_starter, user="dana") == [
        "python",
        "starter.py",
        "approve",
        "ecs-canary/prod/myapp",
        "--run-id",
        "0195-run",
        "--by",
        "dana",
    ]
    assert "--name reject" in reject_cli


def test_a_namespace_other_than_default_is_named_in_the_command():
    other = RunLinks(namespace="deploys", workflow_id="a b", run_id="r", web_ui="http://ui")
    argv = shlex.split(decision_commands(other, "approve")[0])
    assert argv[argv.index("--namespace") + 1] == "deploys"
    assert argv[argv.index("--workflow-id") + 1] == "a b"


def _as_the_shell_reads(command: str, user: str) -> list[str]:
    """The words bash passes to the program, with `$USER` set to `user`."""
    printed = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {command}"],
        env={"USER": user, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return printed.stdout.split("\0")[:-1]


def test_json_posts_the_event_the_full_status_and_the_links():
    status = _status()
    posted = _posted("gate_open", "json", status, GATE)

    assert posted["event"] == "gate_open"
    assert posted["status"] == status.model_dump(mode="json")
    assert posted["at"] == OPENED.isoformat()
    assert posted["web_ui"] == RUN.web_ui
    assert (posted["workflow_id"], posted["run_id"]) == (RUN.workflow_id, RUN.run_id)
    assert posted["commands"]["reject"] == decision_commands(RUN, "reject")
    assert posted["gate"]["deadline"] == "2026-03-04T14:09:30Z"
    assert posted["text"] == "myapp: the canary waits for approval on prod"
    json.dumps(posted)  # plain JSON throughout


def test_decided_says_who_how_and_why():
    decision = {
        "action": "reject",
        "by": "bob",
        "reason": "error rate up",
        "at": OPENED,
        "via": "update",
        "approvals": ["alice"],
    }
    status = _status(gate_open=False, decision=decision)
    text = _slack_text(_posted("decided", "slack", status))
    posted = _posted("decided", "json", status)

    assert "myapp: the canary was rejected by bob" in text
    assert "*How:* the `reject` Update" in text
    assert "*Why:* error rate up" in text
    assert "myappCanary is deleted; myapp is not changed" in text
    assert "```" not in text  # no commands once decided
    assert posted["facts"]["Why"] == "error rate up"
    assert "commands" not in posted


def test_an_automatic_decision_names_what_decided():
    decision = {
        "action": "approve",
        "by": "ecs-canary",
        "reason": "no decision within 10m",
        "at": OPENED,
        "via": "timeout",
    }
    text = _slack_text(_posted("decided", "slack", _status(decision=decision)))
    assert "the gate's timeout (`on_timeout: approve`)" in text
    assert "then myapp rolls out the new task definition" in text


def _finished(outcome: str, reason: str | None, canary_deleted: bool) -> DeploymentStatus:
    stages = [
        {
            "stage": stage,
            "started_at": OPENED + timedelta(seconds=start),
            "ended_at": OPENED + timedelta(seconds=end),
        }
        for stage, start, end in (("canary_deploy", 0, 42), ("verification", 42, 232))
    ]
    return finished_status(outcome, reason, canary_deleted, stages)


def test_finished_gives_the_outcome_the_stage_timings_and_the_canary():
    text = _slack_text(_posted("finished", "slack", _finished("succeeded", None, True)))
    failed = _slack_text(
        _posted("finished", "slack", _finished("failed", "the canary never got steady", False))
    )

    assert ":rocket: *myapp: the deployment succeeded*" in text
    assert "• canary_deploy: 42s\n• verification: 3m10s" in text
    assert "*Canary:* myappCanary deleted" in text
    assert "*Reason:*" not in text
    assert "myapp: the deployment failed" in failed
    assert "*Reason:* the canary never got steady" in failed
    assert "myappCanary was NOT deleted: delete it by hand" in failed


def test_a_long_reason_is_clipped_for_slack():
    status = _finished("failed", "x" * 5000, False)
    posted = _posted("finished", "slack", status)
    assert all(len(block["text"]["text"]) <= 3000 for block in posted["blocks"][:-1])
    assert _posted("finished", "json", status)["status"]["result"]["reason"] == "x" * 5000
