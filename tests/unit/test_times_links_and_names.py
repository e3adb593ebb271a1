"""What the starter prints about time, people and places, without a server: the gate's
deadline and the bake's end with what is left of them at the moment of printing, Web UI links
from TEMPORAL_UI_URL / TEMPORAL_UI_PORT, and who a decision is made by."""

from __future__ import annotations

import argparse
import getpass
import shlex
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from cli.commands import decide, waiting_query
from cli.errors import CliError
from cli.format import bake_text, current_user, deadline_text, decision_commands, status_lines
from ecs_canary.web_ui import list_link, run_link
from tests.helpers.statuses import deployment_status

DEADLINE = datetime(2026, 12, 2, 14, 9, 30, tzinfo=UTC)
WID = "ecs-canary/prod/myapp"


def before(seconds: float) -> datetime:
    return DEADLINE - timedelta(seconds=seconds)


# --- times ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "text"),
    [
        (before(240), "decide by 14:09:30 UTC (4m left)"),
        (before(270.9), "decide by 14:09:30 UTC (4m30s left)"),  # never more than is left
        (before(0.4), "decide by 14:09:30 UTC (0s left)"),
        (DEADLINE, "decide by 14:09:30 UTC (time is up)"),
        (DEADLINE + timedelta(minutes=2), "decide by 14:09:30 UTC (time is up)"),
        (before(3 * 3600 + 60), "decide by 14:09:30 UTC (3h1m left)"),
        (before(16 * 3600), "decide by 2026-12-02 14:09:30 UTC (16h left)"),  # from yesterday
    ],
)
def test_the_deadline_reads_as_a_time_and_what_is_left_at_the_moment_of_printing(now, text):
    assert deadline_text(DEADLINE, now) == text


def test_the_bake_end_reads_the_same_way():
    assert bake_text(DEADLINE, before(90)) == "baking until 14:09:30 UTC (1m30s left)"


def test_a_local_time_is_shown_in_utc():
    local = DEADLINE.astimezone(pytest.importorskip("zoneinfo").ZoneInfo("Europe/Paris"))
    assert deadline_text(local, before(60)) == "decide by 14:09:30 UTC (1m left)"


def test_status_shows_the_deadline_and_the_approvals_so_far():
    shown = deployment_status(gate_deadline=DEADLINE, approvals=["alice"], min_approvals=2)
    lines = status_lines(WID, shown, now=before(240))
    assert "gate:      OPEN, decide by 14:09:30 UTC (4m left)" in lines
    assert "approvals: alice (1 of 2)" in lines


def test_status_json_carries_the_deadline_as_iso_8601_utc():
    shown = deployment_status(gate_deadline=DEADLINE)
    assert '"gate_deadline":"2026-12-02T14:09:30Z"' in shown.model_dump_json()
    assert '"bake_ends_at":null' in shown.model_dump_json()


# --- Web UI links -----------------------------------------------------------------------------


def test_links_use_temporal_ui_url(monkeypatch):
    monkeypatch.setenv("TEMPORAL_UI_URL", "https://temporal.example.com/ui/")
    monkeypatch.setenv("TEMPORAL_UI_PORT", "8300")  # the URL wins
    assert run_link("prod", WID) == (
        "https://temporal.example.com/ui/namespaces/prod/workflows/ecs-canary%2Fprod%2Fmyapp"
    )
    assert run_link("prod", WID, "01ab").endswith("/ecs-canary%2Fprod%2Fmyapp/01ab/history")


@pytest.mark.parametrize(("port", "base"), [("8300", "http://localhost:8300"), (None, None)])
def test_without_a_url_links_go_to_the_local_stacks_ui_port(monkeypatch, port, base):
    monkeypatch.delenv("TEMPORAL_UI_URL", raising=False)
    if port is None:
        monkeypatch.delenv("TEMPORAL_UI_PORT", raising=False)
    else:
        monkeypatch.setenv("TEMPORAL_UI_PORT", port)
    expected = base or "http://localhost:8233"
    assert run_link("default", "wf") == f"{expected}/namespaces/default/workflows/wf"


def test_the_list_link_carries_the_query_as_the_ui_writes_it(monkeypatch):
    monkeypatch.setenv("TEMPORAL_UI_URL", "http://127.0.0.1:8233")
    query = waiting_query("myapp")
    assert query == (
        "DeploymentStage='verification' AND ExecutionStatus='Running' AND EcsService='myapp'"
    )
    link = list_link("default", query)
    assert link == (
        "http://127.0.0.1:8233/namespaces/default/workflows?query=DeploymentStage%3D%27"
        "verification%27+AND+ExecutionStatus%3D%27Running%27+AND+EcsService%3D%27myapp%27"
    )
    assert parse_qs(urlsplit(link).query) == {"query": [query]}


# --- who decides ------------------------------------------------------------------------------


def test_decisions_are_made_as_user_by_default(monkeypatch):
    monkeypatch.setenv("USER", "carol")
    assert current_user() == "carol"
    assert decision_commands(WID, "approve") == [
        f"temporal workflow signal --workflow-id {WID} --name approve "
        """--input '{"by":"carol"}'""",
        f"python starter.py approve {WID} --by carol",
    ]


def test_a_known_run_is_named_in_both_commands(monkeypatch):
    monkeypatch.setenv("USER", "carol")
    cli, starter = decision_commands(WID, "approve", run_id="0195-run")
    assert shlex.split(cli)[:6] == [
        "temporal", "workflow", "signal", "--workflow-id", WID, "--run-id"
    ]  # fmt: skip
    assert shlex.split(cli)[6] == "0195-run"
    assert starter == f"python starter.py approve {WID} --run-id 0195-run --by carol"
    signed = decision_commands(WID, "reject", signed=True, run_id="0195-run")
    assert all("--run-id 0195-run" in command for command in signed)


def test_without_user_the_login_name_decides(monkeypatch):
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.setenv("LOGNAME", "dave")
    assert current_user() == "dave"


def _nobody(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)

    def no_login_name() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_login_name)


def test_when_nobody_can_be_named_the_hints_ask_for_a_name(monkeypatch):
    _nobody(monkeypatch)
    assert current_user() is None
    commands = " ".join(decision_commands(WID, "reject"))
    assert "--by YOUR_NAME" in commands and '"by":"YOUR_NAME"' in commands
    assert "unknown" not in commands


async def test_when_nobody_can_be_named_a_decision_needs_by(monkeypatch):
    _nobody(monkeypatch)
    args = argparse.Namespace(
        command="approve", workflow_id=WID, by=None, reason=None, signal=False
    )
    with pytest.raises(CliError) as refused:
        await decide(None, args)  # type: ignore[arg-type]  # refused before any call
    assert refused.value.code == 2
    assert refused.value.message == (
        "cannot tell who decides ($USER is not set, no login name): pass --by"
    )
