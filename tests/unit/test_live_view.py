"""`watch` on a terminal, without a server: the live view rendered from representative statuses
at a fixed "now" (the times left are the client's, worked out at each redraw), the story's lines
above it and the outcome after its last render, and `follow` choosing the view on a terminal
and the plain lines anywhere else."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from temporalio.client import WorkflowExecutionStatus

import cli.progress
from cli.live import LiveView, finished_status, render_view
from cli.progress import follow
from cli.timeline import Timeline
from ecs_canary.models import Decision, DeploymentStatus, WaitProgress
from ecs_canary.notifications import NotificationState
from ecs_canary.scaling import ScalableTarget, ScalingHoldState
from ecs_canary.steps import StepState
from ecs_canary.targets import TargetCount
from ecs_canary.traffic import ListenerRule, TrafficState
from tests.helpers.statuses import deployment_status
from tests.helpers.statuses import finished_status as finished_run

WID = "ecs-canary/prod/myapp"
T0 = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
EVENTS = [f"(service myappCanary) event {n}" for n in range(1, 6)]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def timings(*spans: tuple[str, float, float | None]) -> list[dict[str, Any]]:
    return [
        {"stage": s, "started_at": at(a), "ended_at": None if b is None else at(b)}
        for s, a, b in spans
    ]


def step(name: str, kind: str, state: str, **fields: Any) -> StepState:
    return StepState.model_validate({"name": name, "type": kind, "state": state, **fields})


def shown(
    status: DeploymentStatus | None,
    live: WaitProgress | None = None,
    *,
    now: float = 60,
    terminal: bool = False,
) -> list[str]:
    """The view's lines at `now` (14:01:00 unless said) on a 100-column console (a terminal's,
    in colour, or a file's): the text is the same either way."""
    console = Console(file=io.StringIO(), width=100, force_terminal=terminal, record=True)
    console.print(render_view(WID, status, live, at(now)))
    return [line.rstrip() for line in console.export_text().splitlines()]


CANARY_DEPLOYING = deployment_status(
    stage="canary_deploy",
    gate_open=False,
    running_count=0,
    desired_count=1,
    stages=timings(("canary_deploy", 15, None)),
)
AT_GATE = deployment_status(
    stages=timings(("canary_deploy", 0, 3.3), ("verification", 3.3, None)),
    gate_deadline=at(609.5),
    approvals=["alice"],
    min_approvals=2,
)
STEPS = [
    step("smoke", "run_task", "passed", summary="1 task passed (exit code 0)", started_at=at(4)),
    step("health", "http", "running", started_at=at(20)),
    step("errors", "metrics", "failed", summary="error rate 7%\nabove 5%", started_at=at(4)),
    step("load", "workflow", "pending"),
]


@pytest.mark.parametrize("terminal", [False, True])
def test_a_deploying_canary_shows_its_stage_and_running_out_of_desired_tasks(terminal):
    live = WaitProgress(running_count=1, desired_count=3, recent_events=EVENTS)
    lines = shown(CANARY_DEPLOYING, live, terminal=terminal)
    assert lines[0] == f"{WID}  myapp on prod (canary myappCanary)"
    assert lines[1] == "stage         canary_deploy   canary_deploy 45s"
    assert lines[2].startswith("tasks         ━")
    assert lines[2].endswith(" 1/3 running")
    # The last few ECS events, newest last; no gate before verification.
    assert lines[3:] == [
        "ECS events    (service myappCanary) event 3",
        "              (service myappCanary) event 4",
        "              (service myappCanary) event 5",
    ]


def test_without_a_wait_running_the_counts_are_the_last_recorded():
    assert "1/1 running" in shown(AT_GATE)[2]
    assert "tasks" not in "".join(shown(AT_GATE.model_copy(update={"running_count": None})))


def test_the_open_gate_shows_by_when_to_decide_as_of_now_and_the_approvals_so_far():
    lines = shown(AT_GATE)
    assert lines[1] == "stage         verification   canary_deploy 3.3s → verification 56s"
    assert lines[3:] == [
        "gate          OPEN, decide by 14:10:09 UTC (9m9s left)",
        "approvals     alice (1 of 2)",
    ]
    # Nine minutes later, by the clock of that redraw.
    assert "gate          OPEN, decide by 14:10:09 UTC (9s left)" in shown(AT_GATE, now=600)


def test_a_baking_canary_shows_when_the_bake_ends():
    baking = deployment_status(gate_open=False, bake_ends_at=at(90))
    assert "gate          baking until 14:01:30 UTC (30s left)" in shown(baking)


@pytest.mark.parametrize("terminal", [False, True])
def test_each_verification_step_shows_its_state_and_summary(terminal):
    lines = shown(deployment_status(gate_open=False, verification_steps=STEPS), terminal=terminal)
    assert lines[3:8] == [
        "steps         verify smoke (run_task)  passed   1 task passed (exit code 0)",
        "              verify health (http)     running  for 40s",
        "              verify errors (metrics)  failed   error rate 7% above 5%",
        "              verify load (workflow)   pending",
        "gate          closed, waiting for 2 verification steps",
    ]


def test_a_long_summary_or_event_is_cut_to_one_line():
    long = step("smoke", "run_task", "failed", summary="container web exited " * 10)
    live = WaitProgress(running_count=1, desired_count=1, recent_events=["event " * 40])
    lines = shown(deployment_status(verification_steps=[long]), live)
    assert lines[3].startswith("steps         verify smoke (run_task)  failed  container web")
    assert lines[3].endswith("…") and len(lines[3]) == 100
    assert lines[-1].startswith("ECS events    event event") and lines[-1].endswith("…")


def test_a_finished_run_shows_its_outcome_decision_and_failed_notifications():
    decision = Decision(
        action="approve", by="bob", reason="looks good", at=at(50), via="update",
        approvals=["alice", "bob"],
    )  # fmt: skip
    notice = NotificationState(
        event="gate_open", target_index=0, target="slack http://127.0.0.1:9000/hook",
        state="failed", attempts=5, error="HTTP 500", queued_at=at(40), settled_at=at(60),
    )  # fmt: skip
    spans = timings(
        ("canary_deploy", 0, 3.3), ("verification", 3.3, 50), ("canary_delete", 50, 51),
        ("rolling_deploy", 51, 58),
    )  # fmt: skip
    run = finished_run("succeeded", stages=spans, decision=decision).result
    assert run is not None
    last_poll = AT_GATE.model_copy(update={"notifications": [notice]})
    assert shown(finished_status(run, last_poll)) == [
        f"{WID}  myapp on prod (canary myappCanary)",
        "stage         finished (succeeded)   canary_deploy 3.3s → verification 46.7s → "
        "canary_delete 1s →",
        "              rolling_deploy 7s",
        "approvals     alice, bob (2 of 2)",
        "decision      approve by bob (update): looks good",
        "not notified  gate_open to slack http://127.0.0.1:9000/hook failed after 5 attempts: "
        "HTTP 500",
    ]


def test_before_the_first_status_the_view_says_so():
    lines = shown(None, WaitProgress(running_count=0, desired_count=1))
    assert lines[:2] == [WID, "stage         not known yet (no answer to the status query)"]
    assert lines[2].endswith("0/1 running")


def screens(raw: str) -> list[list[str]]:
    """What a terminal was sent, as the text (escape codes dropped) between two redraws: each
    redraw starts with a carriage return, then what was printed above the view, then the view
    (which starts with the workflow id)."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    return [[line.rstrip() for line in part.split("\n")] for part in text.split("\r")]


def printed_above(raw: str) -> list[str]:
    lines = []
    for screen in screens(raw):
        view_at = next((i for i, line in enumerate(screen) if line.startswith(WID)), len(screen))
        lines.extend(screen[:view_at])
    return lines


def test_the_story_goes_above_the_view_and_the_outcome_after_its_last_render(monkeypatch):
    monkeypatch.setenv("USER", "carol")
    out = io.StringIO()
    console = Console(file=out, width=100, force_terminal=True)
    view = LiveView(WID, console, clock=lambda: at(60), run_id="r1")
    view.line(f"watching {WID} (run r1)")
    view.update(AT_GATE, None)
    view.update(AT_GATE, None)  # nothing new: nothing printed again
    decision = Decision(
        action="approve", by="carol", reason=None, at=at(70), via="update",
        approvals=["alice", "carol"],
    )  # fmt: skip
    spans = timings(("canary_deploy", 0, 3.3), ("verification", 3.3, 70))
    view.finish(finished_run("succeeded", stages=spans, decision=decision).result, None)

    assert printed_above(out.getvalue()) == [
        f"watching {WID} (run r1)",
        "stage canary_deploy started",
        "stage canary_deploy done (3.3s)",
        "stage verification started",
        "gate open: waiting for approval, decide by 14:10:09 UTC (9m9s left)",
        f"  approve: python starter.py approve {WID} --run-id r1 --by carol",
        f"  reject: python starter.py reject {WID} --run-id r1 --by carol",
        "decision: approve by carol (update)",
        "stage verification done (1m7s)",
    ]
    # The last render stays on the screen, then the outcome.
    assert screens(out.getvalue())[-1] == [
        f"{WID}  myapp on prod (canary myappCanary)",
        "stage         finished (succeeded)   canary_deploy 3.3s → verification 1m7s",
        "approvals     alice, carol (2 of 2)",
        "decision      approve by carol (update)",
        "outcome: succeeded",
        "",
    ]


# --- follow: the live view on a terminal, plain lines elsewhere ------------------------------


class Terminal(io.StringIO):
    """What a terminal's stdout answers to `isatty`."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def one_run(monkeypatch):
    """`follow` on a run that polls twice (canary 0/1, then 1/1) and succeeds, with no server
    and no waits between polls."""
    states = iter([WorkflowExecutionStatus.RUNNING] * 2 + [WorkflowExecutionStatus.COMPLETED])
    counts = iter([(0, 1), (1, 1)])

    async def describe(_handle: object) -> SimpleNamespace:
        return SimpleNamespace(run_id="r1", status=next(states))

    async def live_progress(_client: object, _description: object) -> WaitProgress:
        running, desired = next(counts)
        return WaitProgress(running_count=running, desired_count=desired)

    async def final_result(_handle: object) -> tuple[Any, None]:
        spans = timings(("canary_deploy", 15, 18.3))
        return finished_run("succeeded", stages=spans).result, None

    async def query_status(_handle: object) -> DeploymentStatus:
        return CANARY_DEPLOYING

    monkeypatch.setattr(cli.progress, "POLL_SECONDS", 0)
    monkeypatch.setattr(cli.progress, "run_handle", lambda *_args: object())
    for fake in (describe, live_progress, final_result, query_status):
        monkeypatch.setattr(cli.progress, fake.__name__, fake)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)


PLAIN = [
    f"watching {WID} (run r1)",
    "stage canary_deploy started",
    "canary_deploy: 0/1 running",
    "canary_deploy: 1/1 running",
    "stage canary_deploy done (3.3s)",
    "outcome: succeeded",
]


@pytest.mark.parametrize(
    ("tty", "term", "live"),
    [
        (True, "xterm-256color", True),
        (False, "xterm-256color", False),  # a pipe, a file, a CI log
        (True, "dumb", False),  # a terminal that cannot move its cursor
    ],
    ids=["terminal", "not-a-terminal", "dumb-terminal"],
)
async def test_follow_shows_the_live_view_on_a_terminal_only(one_run, monkeypatch, tty, term, live):
    monkeypatch.setenv("TERM", term)
    out = Terminal() if tty else io.StringIO()
    assert await follow(object(), WID, out=out) == 0
    printed = out.getvalue()
    if not live:
        assert printed.splitlines() == PLAIN
        return
    assert "\x1b[" in printed  # cursor moves and colour
    # The story above the view (the counts are its bar, not lines), the outcome after it.
    assert printed_above(printed) == [PLAIN[0], PLAIN[1], PLAIN[4]]
    drawn = [line for screen in screens(printed) for line in screen]
    assert any(line.startswith("tasks ") and line.endswith(" 1/1 running") for line in drawn)
    assert drawn[-2:] == ["outcome: succeeded", ""]


def test_watch_shows_the_targets_and_the_weights_in_place_and_tells_each_change_once():
    elb = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    main, canary = f"{elb}:targetgroup/myapp-tg/1", f"{elb}:targetgroup/myapp-canary-tg/2"
    rule = ListenerRule(rule_arn="r", listener_arn="l", is_default=False, actions=[])
    traffic = TrafficState(
        rule=rule, canary_target_group_arn=canary, weights={main: 90.0, canary: 10.0}, shifted=True
    )
    count = TargetCount(target_group_arn=canary, tasks=1, healthy=1, healthy_in_group=1)
    status = deployment_status(targets=[count], traffic=traffic)

    lines = shown(status)
    assert any(
        re.match(r"targets\s+1 of 1 healthy targets in myapp-canary-tg, ~10 %", x) for x in lines
    )
    assert any(re.match(r"traffic\s+myapp-tg 90 %, myapp-canary-tg 10 %", x) for x in lines)
    story = Timeline(WID)
    told = story.of_status(status)
    assert "traffic: myapp-tg 90 %, myapp-canary-tg 10 % (the canary's weight)" in told
    assert "targets: 1 of 1 healthy targets in myapp-canary-tg, ~10 %" in told
    assert not [line for line in story.of_status(status) if line.startswith(("targets", "traffic"))]


def test_the_story_tells_the_rule_and_the_scaling_put_back_after_their_change():
    elb = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    main, canary = f"{elb}:targetgroup/myapp-tg/1", f"{elb}:targetgroup/myapp-canary-tg/2"
    rule = ListenerRule(rule_arn="r", listener_arn="l", is_default=False, actions=[])
    recorded = TrafficState(
        rule=rule, canary_target_group_arn=canary, weights={main: 100.0, canary: 0.0}
    )
    shifted = recorded.model_copy(update={"weights": {main: 90.0, canary: 10.0}, "shifted": True})
    target = ScalableTarget(resource_id="service/prod/myapp", min_capacity=2, max_capacity=8)
    held = ScalingHoldState(target=target, suspended=True)
    story = Timeline(WID)
    told = [
        line
        for traffic, scaling in [
            (recorded, ScalingHoldState(target=target)),
            (shifted, ScalingHoldState(target=target)),
            (recorded, held),
            (recorded, ScalingHoldState(target=target)),
        ]
        for line in story.of_status(deployment_status(traffic=traffic, scaling=scaling))
        if line.startswith(("traffic", "scaling"))
    ]
    assert told == [
        "traffic: myapp-tg 100 %, myapp-canary-tg 0 % (as recorded)",
        "scaling: scalable target service/prod/myapp (range 2-8)",
        "traffic: myapp-tg 90 %, myapp-canary-tg 10 % (the canary's weight)",
        "traffic: myapp-tg 100 %, myapp-canary-tg 0 % (as recorded)",
        "scaling: dynamic scaling suspended for the rolling deploy (range 2-8)",
        "scaling: scalable target service/prod/myapp (range 2-8)",
    ]
