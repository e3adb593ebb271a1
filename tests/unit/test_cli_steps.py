"""The starter and verification steps, without a server: how `status`, `watch` and `deploy`
show steps (pure functions of DeploymentStatus / DeploymentResult), and the request loader
refusing bad steps with one line before anything contacts Temporal."""

from __future__ import annotations

import copy
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.commands import load_request
from cli.errors import CliError
from cli.format import details, gate_text, status_lines, step_text, steps_text
from cli.progress import ProgressPrinter
from ecs_canary.models import (
    Decision,
    DeploymentRequest,
    DeploymentResult,
    DeploymentStatus,
    Outcome,
    Stage,
    StageTiming,
)
from ecs_canary.steps import StepState
from tests.helpers.statuses import deployment_status

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WID = "ecs-canary/ecs-canary/myapp"
SEED = {
    "<emulator-subnet-1>": "subnet-aaaa1111",
    "<emulator-subnet-2>": "subnet-bbbb2222",
    "<emulator-security-group>": "sg-cccc3333",
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def step(name: str, kind: str, state: str = "pending", **fields: Any) -> StepState:
    return StepState.model_validate({"name": name, "type": kind, "state": state, **fields})


def stages(*spans: tuple[Stage, float, float | None]) -> list[StageTiming]:
    return [
        StageTiming(stage=s, started_at=at(a), ended_at=None if b is None else at(b))
        for s, a, b in spans
    ]


# What a status and a result both name.
SERVICES: dict[str, Any] = {
    "cluster": "ecs-canary",
    "main_service": "myapp",
    "canary_service": "myappCanary",
    "task_definition_arn": None,
}


def status(**changes: Any) -> DeploymentStatus:
    """The canary steady, its verification under way (the gate not open yet)."""
    verifying = stages((Stage.CANARY_DEPLOY, 0, 3), (Stage.VERIFICATION, 3, None))
    return deployment_status(
        **{"gate_open": False, "cluster": "ecs-canary", "stages": verifying, **changes}
    )


def result(**changes: Any) -> DeploymentResult:
    base: dict[str, Any] = {
        "outcome": Outcome.SUCCEEDED,
        "reason": None,
        **SERVICES,
        "previous_task_definition_arn": None,
        "canary_deleted": True,
        "decision": None,
        "attempts": [],
        "stages": [],
        "verification_steps": [],
    }
    return DeploymentResult.model_validate({**base, **changes})


SMOKE_PASSED = step(
    "smoke", "run_task", "passed", summary="1 task passed (exit code 0)",
    started_at=at(3), ended_at=at(7),
)  # fmt: skip
HEALTH_RUNNING = step("health", "http", "running", started_at=at(7))


# --- status -----------------------------------------------------------------------------------


def test_status_prints_one_line_per_step_after_a_count():
    shown = status(
        verification_steps=[SMOKE_PASSED, HEALTH_RUNNING, step("errors", "metrics")],
    )
    lines = status_lines(WID, shown)

    first = lines.index("steps:     3: 1 passed, 1 running, 1 pending")
    assert lines[first + 1 : first + 4] == [
        "  verify smoke (run_task): passed — 1 task passed (exit code 0)",
        "  verify health (http): running since 2026-12-02 12:00:07 UTC",
        "  verify errors (metrics): pending",
    ]
    assert lines[first + 4] == "attempts:  0"
    assert "gate:      closed, waiting for 2 verification steps" in lines


def test_status_without_steps_is_unchanged():
    lines = status_lines(WID, status())
    assert lines == [
        f"workflow:  {WID}",
        "service:   myapp on ecs-canary (canary myappCanary)",
        "stage:     verification",
        "gate:      closed",
        "tasks:     1/1 running",
        "decision:  none yet",
        "attempts:  0",
        "stages:",
        "  - canary_deploy   started 2026-12-02 12:00:00 UTC, took 3s",
        "  - verification    started 2026-12-02 12:00:03 UTC, running",
    ]


def test_a_failed_and_a_cancelled_step_show_their_summaries_on_one_line():
    failed = step(
        "smoke", "run_task", "failed",
        summary="task 0a1b: container web exited with code 1\n(Essential container in task exited)",
        started_at=at(3), ended_at=at(9),
    )  # fmt: skip
    skipped = step("health", "http", "cancelled", summary="not run: the canary was decided first")
    assert step_text(failed) == (
        "verify smoke (run_task): failed — task 0a1b: container web exited with code 1 "
        "(Essential container in task exited)"
    )
    assert step_text(skipped) == (
        "verify health (http): cancelled — not run: the canary was decided first"
    )


def test_the_gate_reads_as_before_once_steps_are_through_or_the_canary_is_not_steady():
    done = [SMOKE_PASSED]
    assert gate_text(status(verification_steps=done)) == "closed"
    opened = status(verification_steps=done, gate_open=True, gate_deadline=at(70))
    assert gate_text(opened, now=at(10)) == "OPEN, decide by 12:01:10 UTC (1m left)"
    starting = status(stage=Stage.CANARY_DEPLOY, verification_steps=[step("smoke", "run_task")])
    assert gate_text(starting) == "closed"
    baking = status(verification_steps=[HEALTH_RUNNING], bake_ends_at=at(40))
    assert gate_text(baking, now=at(10)) == "baking until 12:00:40 UTC (30s left)"
    assert gate_text(status(verification_steps=[HEALTH_RUNNING])) == (
        "closed, waiting for 1 verification step"
    )


def test_status_json_carries_the_steps():
    shown = status(verification_steps=[SMOKE_PASSED])
    again = DeploymentStatus.model_validate_json(shown.model_dump_json(indent=2))
    assert again.verification_steps == [SMOKE_PASSED]
    assert json.loads(shown.model_dump_json())["verification_steps"][0]["state"] == "passed"


# --- watch ------------------------------------------------------------------------------------


def printer() -> tuple[ProgressPrinter, io.StringIO]:
    """A watch whose clock stands at 12:00:09, when the steps below are through."""
    out = io.StringIO()
    return ProgressPrinter(WID, out, clock=lambda: at(9), run_id="r1"), out


def test_watch_prints_each_step_change_once_in_time_order(monkeypatch):
    monkeypatch.setenv("USER", "carol")  # who the printed commands decide as
    watch, out = printer()
    watch.update(
        status(verification_steps=[step("smoke", "run_task"), step("health", "http")]), None
    )
    running = step("smoke", "run_task", "running", started_at=at(3))
    watch.update(status(verification_steps=[running, step("health", "http")]), None)
    watch.update(status(verification_steps=[running, step("health", "http")]), None)
    # One poll later both steps are through; the second started and ended between two polls.
    health = step(
        "health", "http", "passed", summary="10 requests: 10 ok, 0 failed; p50 3 ms, p95 5 ms",
        started_at=at(7), ended_at=at(9),
    )  # fmt: skip
    watch.update(
        status(gate_open=True, gate_deadline=at(609), verification_steps=[SMOKE_PASSED, health]),
        None,
    )
    watch.update(status(gate_open=True, verification_steps=[SMOKE_PASSED, health]), None)

    assert out.getvalue().splitlines() == [
        "stage canary_deploy started",
        "stage canary_deploy done (3s)",
        "stage verification started",
        "verify smoke (run_task) started",
        "verify smoke (run_task): passed — 1 task passed (exit code 0)",
        "verify health (http) started",
        "verify health (http): passed — 10 requests: 10 ok, 0 failed; p50 3 ms, p95 5 ms",
        "gate open: waiting for approval, decide by 12:10:09 UTC (10m left)",
        f"  approve: python starter.py approve {WID} --run-id r1 --by carol",
        f"  reject: python starter.py reject {WID} --run-id r1 --by carol",
    ]


def test_watch_a_failed_step_comes_before_its_rejection_and_skipped_steps_after():
    failed = step(
        "smoke", "run_task", "failed", summary="container web exited with code 1",
        started_at=at(3), ended_at=at(9),
    )  # fmt: skip
    decision = Decision(
        action="reject",
        by="step:smoke",
        reason="verification step smoke failed: container web exited with code 1",
        at=at(9),
        via="step",
    )
    skipped = step("health", "http", "cancelled", summary="not run: the canary was decided first")
    ended = stages(
        (Stage.CANARY_DEPLOY, 0, 3), (Stage.VERIFICATION, 3, 9), (Stage.CANARY_DELETE, 9, 11)
    )
    watch, out = printer()
    running = step("smoke", "run_task", "running", started_at=at(3))
    watch.update(status(verification_steps=[running, step("health", "http")]), None)
    watch.finish(
        result(
            outcome=Outcome.REJECTED,
            reason="reject (step) by step:smoke: verification step smoke failed",
            decision=decision,
            stages=ended,
            verification_steps=[failed, skipped],
        ),
        None,
    )
    lines = out.getvalue().splitlines()
    assert lines[3:] == [
        "verify smoke (run_task) started",
        "verify smoke (run_task): failed — container web exited with code 1",
        "decision: reject by step:smoke (step): verification step smoke failed: container web "
        "exited with code 1",
        "verify health (http): cancelled — not run: the canary was decided first",
        "stage verification done (6s)",
        "stage canary_delete started",
        "stage canary_delete done (2s)",
        "outcome: rejected (reject (step) by step:smoke: verification step smoke failed)",
    ]


def test_watch_a_step_stopped_by_a_cancel_is_printed_once_with_its_end():
    stopped = step(
        "smoke", "run_task", "cancelled", summary="stopped: the verification was ended",
        started_at=at(3), ended_at=at(5),
    )  # fmt: skip
    skipped = step("health", "http", "cancelled", summary="not run: the canary was decided first")
    watch, out = printer()
    for _ in range(2):
        watch.update(
            status(
                stages=stages((Stage.CANARY_DEPLOY, 0, 3), (Stage.VERIFICATION, 3, 5)),
                verification_steps=[stopped, skipped],
            ),
            None,
        )
    assert out.getvalue().splitlines()[3:] == [
        "verify smoke (run_task) started",
        "verify smoke (run_task): cancelled — stopped: the verification was ended",
        "verify health (http): cancelled — not run: the canary was decided first",
        "stage verification done (2s)",
    ]


def test_watch_without_steps_prints_what_it_did_before():
    watch, out = printer()
    decision = Decision(action="approve", by="alice", reason=None, at=at(8), via="update")
    watch.update(
        status(
            decision=decision,
            stages=stages(
                (Stage.CANARY_DEPLOY, 0, 3),
                (Stage.VERIFICATION, 3, 8),
                (Stage.CANARY_DELETE, 8, None),
            ),
        ),
        None,
    )
    assert out.getvalue().splitlines() == [
        "stage canary_deploy started",
        "stage canary_deploy done (3s)",
        "stage verification started",
        "decision: approve by alice (update)",
        "stage verification done (5s)",
        "stage canary_delete started",
    ]


# --- deploy: the request's steps ---------------------------------------------------------------


def _resolved(name: str) -> dict[str, Any]:
    text = (EXAMPLES / name).read_text()
    for placeholder, value in SEED.items():
        text = text.replace(placeholder, value)
    return json.loads(text)


def test_the_web_ui_details_and_deploy_name_the_steps():
    request = DeploymentRequest.model_validate(_resolved("verify-run-task.json"))
    assert steps_text(request) == (
        "smoke (run_task), integration (run_task); a failed step rejects the canary"
    )
    assert "**Verification steps:** smoke (run_task), integration (run_task)" in details(request)
    gated = DeploymentRequest.model_validate(_resolved("verify-metrics.json"))
    assert steps_text(gated) == "errors (metrics); after a failed step a person decides"
    plain = DeploymentRequest.model_validate(_resolved("first-deployment.json"))
    assert "Verification steps" not in details(plain)


@pytest.mark.parametrize(
    "example", sorted(p.name for p in EXAMPLES.glob("*.json") if p.name != "train.json")
)
def test_every_example_loads(example, tmp_path):
    path = tmp_path / example
    path.write_text(json.dumps(_resolved(example)))
    assert load_request(str(path)).service_name in ("myapp", "billing")


def _as_request(value: dict[str, Any]) -> dict[str, Any]:
    """A documented JSON block (a request, its `verification`, or one step) as a request."""
    base = _resolved("request.json")
    if "service_name" in value:
        return value
    if "verification" in value:
        return {**base, **value}
    if "steps" in value or "on_step_failure" in value:
        return {**base, "verification": value}
    return {**base, "verification": {"steps": [value]}}


def test_the_verification_docs_json_examples_are_valid():
    text = (ROOT / "docs" / "verification.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 5
    for block in blocks:
        DeploymentRequest.model_validate(_as_request(json.loads(block)))


def test_the_readme_verification_example_is_valid():
    text = (ROOT / "README.md").read_text()
    start = text.index('"verification": {"steps": [')
    fragment = text[start : text.index("```", start)]
    request = DeploymentRequest.model_validate(_as_request(json.loads("{" + fragment + "}")))
    assert [s.type for s in request.verification.steps] == [
        "run_task",
        "http",
        "metrics",
        "workflow",
    ]


# --- load_request: bad steps are refused before anything starts ---------------------------------


def _load_with(tmp_path: Path, steps: Any, **verification: Any) -> str:
    """The one-line error load_request raises for request.json with these steps."""
    raw = _resolved("request.json")
    raw["verification"] = {**copy.deepcopy(raw["verification"]), "steps": steps, **verification}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CliError) as refused:
        load_request(str(path))
    assert refused.value.code == 2
    assert "\n" not in refused.value.message
    return refused.value.message


HTTP = {"name": "health", "type": "http", "url": "http://127.0.0.1:8080/"}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [{"name": "lint", "type": "shell"}],
            "verification.steps[0] (lint, shell): unknown step type 'shell': expected one of "
            "run_task, http, metrics, workflow",
        ),
        (
            [{"name": "lint"}],
            "verification.steps[0] (lint): a step needs a type: one of run_task, http, metrics, "
            "workflow",
        ),
        (
            [HTTP, {**HTTP, "url": "http://127.0.0.1:8080/health"}],
            "verification: verification step names must be unique: health",
        ),
        (
            [{"name": "health", "type": "http"}],
            "verification.steps[0] (health, http).url: Field required",
        ),
        (
            [{**HTTP, "url": "ftp://example.com/"}],
            "verification.steps[0] (health, http).url: must be an http:// or https:// URL "
            "(no spaces)",
        ),
        (
            [HTTP, {"name": "errors", "type": "metrics", "namespace": "MyApp", "max_value": 5}],
            "verification.steps[1] (errors, metrics).metric_name: Field required",
        ),
        (
            [{"name": "errors", "type": "metrics", "namespace": "MyApp", "metric_name": "5xx"}],
            "verification.steps[0] (errors, metrics): step 'errors' needs max_value or "
            "max_ratio_to_primary",
        ),
        (
            [{"name": "e2e", "type": "workflow", "workflow_type": "CheckoutSmokeTests"}],
            "verification.steps[0] (e2e, workflow).task_queue: Field required",
        ),
        (
            [{**HTTP, "name": "smoke tests"}],
            "verification.steps[0] (smoke tests, http).name: must be 1 to 64 letters, digits, "
            "'.', '_' or '-'",
        ),
        (
            [{**HTTP, "timeout": 5}],
            "verification.steps[0] (health, http).timeout: Extra inputs are not permitted",
        ),
        (
            [{"name": "smoke", "type": "run_task", "count": 11}],
            "verification.steps[0] (smoke, run_task).count: Input should be less than or equal "
            "to 10",
        ),
        ({"name": "smoke"}, "verification.steps: Input should be a valid list"),
    ],
)
def test_a_bad_step_is_refused_with_one_line(tmp_path, steps, message):
    assert _load_with(tmp_path, steps) == f"invalid request: {message}"


def test_a_bad_on_step_failure_is_refused(tmp_path):
    assert _load_with(tmp_path, [HTTP], on_step_failure="ignore") == (
        "invalid request: verification.on_step_failure: Input should be 'reject' or 'gate'"
    )


def test_errors_outside_steps_read_as_before(tmp_path):
    raw = _resolved("request.json")
    raw["task_definition"]["containerDefinitions"] = []
    path = tmp_path / "request.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CliError) as refused:
        load_request(str(path))
    assert refused.value.message == (
        "invalid request: task_definition: containerDefinitions must list at least one container"
    )
