"""What people read about a paused or frozen run, and the hold's own rules: pure functions,
tested without a server. The Web UI details start with PAUSED / FROZEN and the Update that lets
the run go on; `starter.py status` says the same; the `frozen` notification names the window,
until when, and how to override it; a pause of a paused run (and the like) is refused."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from cli.format import status_lines
from cli.live import render_view
from ecs_canary.gate import Gate
from ecs_canary.hold import HoldState
from ecs_canary.models import Paused, Stage
from ecs_canary.notification_messages import (
    NotificationInput,
    RunLinks,
    body,
    decision_commands,
)
from ecs_canary.notifications import Notification
from tests.helpers.statuses import deployment_status
from tests.unit.test_workflow_wording import REQUEST
from workflows.presentation import current_details
from workflows.state import DeploymentState

NOW = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)
UNTIL = datetime(2026, 12, 27, tzinfo=UTC)
RUN = RunLinks(
    namespace="default", workflow_id="ecs-canary/prod/myapp", run_id="r1", web_ui="http://ui"
)
PAUSED = Paused(by="alice", reason="incident elsewhere", at=NOW - timedelta(minutes=5))


def test_pause_resume_and_override_are_refused_when_they_would_change_nothing():
    hold = HoldState()
    assert hold.refusal("resume") == "the run is not paused: there is nothing to resume"
    assert hold.refusal("pause") is None and hold.refusal("override_freeze") is None
    hold.paused, hold.freeze_overridden_by = PAUSED, "bob"
    assert hold.refusal("pause") == (
        "the run is already paused (by alice at 2026-12-24 08:55:00 UTC); resume it first"
    )
    assert hold.refusal("resume") is None
    assert hold.refusal("override_freeze") == (
        "freeze windows were already overridden for this run (by bob)"
    )


def test_the_web_ui_details_start_with_paused_and_frozen_and_how_to_go_on():
    state = DeploymentState()
    state.hold.paused = PAUSED
    state.hold.frozen("launch", UNTIL)
    details = current_details(REQUEST, state, Gate(), "ecs-canary/prod/myapp", NOW, "r1")
    first, second, third = details.split("\n\n")[:3]

    assert first == (
        "**PAUSED** by alice at 08:55:00 UTC: incident elsewhere; resume with `temporal workflow "
        "update execute --workflow-id ecs-canary/prod/myapp --run-id r1 --name resume "
        """--input '{"by":"you"}'`"""
    )
    assert second.startswith(
        "**FROZEN** by freeze window launch until 2026-12-27 00:00:00 UTC; an approver may let "
        "this run go on with `temporal workflow update execute"
    )
    assert "--name override_freeze" in second
    assert third == "**Stage:** canary_deploy"


def test_a_run_neither_paused_nor_frozen_reads_as_before():
    details = current_details(REQUEST, DeploymentState(), Gate(), "wid", NOW)
    assert details.startswith("**Stage:** canary_deploy")
    assert "PAUSED" not in details and "FROZEN" not in details


def test_starter_status_says_paused_and_frozen():
    status = deployment_status(paused=PAUSED, frozen_until=UNTIL, frozen_window="launch")
    lines = status_lines("ecs-canary/prod/myapp", status, now=NOW)
    assert "paused:    PAUSED by alice at 2026-12-24 08:55:00 UTC: incident elsewhere" in lines
    assert (
        "frozen:    by freeze window launch until 2026-12-27 00:00:00 UTC (63h left)" in lines
    )


def _frozen(fmt: str, stage: Stage) -> dict[str, Any]:
    status = deployment_status(stage=stage, frozen_until=UNTIL, frozen_window="launch")
    request = NotificationInput(
        notification=Notification(url="http://127.0.0.1:9000/hook", format=fmt),
        target_index=0,
        event="frozen",
        at=NOW,
        status=status,
    )
    return body(request, RUN)


def test_the_frozen_notification_names_the_window_until_when_and_how_to_override_it():
    posted = _frozen("json", Stage.CANARY_DEPLOY)
    assert posted["event"] == "frozen"
    assert posted["text"] == "myapp: held by freeze window launch until 2026-12-27 00:00:00 UTC"
    assert posted["facts"] == {
        "Window": "launch",
        "Until": "2026-12-27 00:00:00 UTC",
        "Waits": "the canary deploy",
    }
    assert posted["commands"] == {"override_freeze": decision_commands(RUN, "override_freeze")}
    held = _frozen("json", Stage.VERIFICATION)
    assert held["facts"]["Waits"] == "the rolling deploy of myapp (the canary keeps serving)"


def test_the_frozen_slack_message_carries_the_override_commands():
    posted = _frozen("slack", Stage.CANARY_DEPLOY)
    text = "\n".join(
        block["text"]["text"]
        for block in posted["blocks"]
        if block["type"] == "section"
    )
    assert ":snowflake: *myapp: held by freeze window launch" in text
    for command in decision_commands(RUN, "override_freeze"):
        assert command in text


def test_watch_shows_a_paused_run_in_its_live_view():
    status = deployment_status(paused=PAUSED)
    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(render_view("ecs-canary/prod/myapp", status, None, NOW))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    paused = r"paused +PAUSED by alice at 2026-12-24 08:55:00 UTC: incident elsewhere"
    assert any(re.fullmatch(paused, line) for line in lines), lines
