"""The release train's request: what a train may say, what is refused before anything starts
(by the model, and by `starter.py train start` before it starts anything), and how the
starter shows a train."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.exceptions import ApplicationError, TerminatedError

from cli.errors import CliError
from cli.train import load_train, train_status_lines
from ecs_canary.gate import Gate
from ecs_canary.train import (
    DeploymentRunEnd,
    TrainOutcome,
    TrainRequest,
    service_named_twice,
)
from tests.helpers import ROOT
from tests.helpers.demo_script import demo
from tests.helpers.statuses import finished_status
from workflows.train_presentation import train_details, train_summary
from workflows.train_state import TrainState

SEED = {"cluster": "ecs-canary", "subnets": ["subnet-a1", "subnet-b2"], "security_group": "sg-c3"}
EXAMPLE = demo.resolve(json.loads((ROOT / "examples" / "train.json").read_text()), SEED)
DEPLOYMENT = EXAMPLE["waves"][0]["deployments"][0]


def _train(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(EXAMPLE), **changes}


def _deployment(service: str, **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DEPLOYMENT), "service_name": service, **changes}


def _refusal(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        TrainRequest.model_validate(body)
    return str(refused.value)


def test_the_example_is_three_services_in_two_waves_with_the_documented_defaults():
    train = TrainRequest.model_validate(EXAMPLE)
    assert [(w.name, [d.service_name for d in w.deployments]) for w in train.waves] == [
        ("canary-wave", ["myapp"]),
        ("the-rest", ["billing", "orders"]),
    ]
    assert train.workflow_id == "ecs-canary-train/payments"
    bare = TrainRequest.model_validate({"name": "t", "waves": EXAMPLE["waves"]})
    assert (bare.approval, bare.max_parallel, bare.on_failure, bare.on_timeout) == (
        "per_wave",
        50,
        "stop",
        "reject",
    )
    assert service_named_twice(train) is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"max_paralel": 3}, "max_paralel\n  Extra inputs are not permitted"),
        ({"approval": "sometimes"}, "Input should be 'per_wave', 'once' or 'none'"),
        ({"name": "pay ments"}, "String should match pattern"),
        ({"waves": []}, "List should have at least 1 item"),
        ({"approvers": ["alice"], "min_approvals": 2}, "only 1 distinct approvers are listed"),
        ({"on_failure": "undo"}, "Input should be 'stop' or 'roll_back_train'"),
        (
            {"waves": [{"name": "a", "deployments": [DEPLOYMENT]}] * 2},
            "wave names must be unique: a named twice",
        ),
        (
            {"waves": [{"name": "a", "deployments": [{**DEPLOYMENT, "train": "x"}]}]},
            "`train` is set by the train itself",
        ),
        (
            {"waves": [{"name": "a", "deployments": [{**DEPLOYMENT, "canary": {"size": 1}}]}]},
            "waves.0.deployments.0.canary.size",
        ),
    ],
)
def test_a_train_that_cannot_run_is_refused_saying_why(changes, expected):
    assert expected in _refusal(_train(**changes))


def test_a_gated_wave_must_fit_in_max_parallel_but_an_ungated_one_need_not():
    wave = {"name": "big", "deployments": [_deployment(f"svc{i}") for i in range(3)]}
    refused = _refusal(_train(waves=[wave], max_parallel=2))
    assert "wave big waits at one gate with its 3 canaries in flight together" in refused
    ungated = TrainRequest.model_validate(_train(waves=[wave], max_parallel=2, approval="none"))
    assert len(ungated.waves[0].deployments) == 3


def test_a_service_named_twice_is_named():
    body = _train(
        waves=[
            {"name": "one", "deployments": [_deployment("api")]},
            {"name": "two", "deployments": [_deployment("web"), _deployment("api")]},
        ]
    )
    assert service_named_twice(TrainRequest.model_validate(body)) == (
        "service api on cluster ecs-canary is named twice in this train (wave one, two)"
    )
    same_wave = _train(waves=[{"name": "one", "deployments": [_deployment("api")] * 2}])
    assert "named twice in this train (wave one)" in (
        service_named_twice(TrainRequest.model_validate(same_wave)) or ""
    )


def test_the_starter_refuses_a_bad_train_file_before_starting_anything(tmp_path: Path):
    path = tmp_path / "train.json"
    path.write_text("{not json")
    with pytest.raises(CliError) as unreadable:
        load_train(str(path))
    assert unreadable.value.code == 2 and "invalid train: " in unreadable.value.message
    path.write_text(json.dumps(_train(waves=[{"name": "one", "deployments": [DEPLOYMENT] * 2}])))
    with pytest.raises(CliError) as twice:
        load_train(str(path))
    assert twice.value.message == (
        "refused: service myapp on cluster ecs-canary is named twice in this train (wave one)"
    )
    path.write_text(json.dumps(_train(approval="sometimes")))
    with pytest.raises(CliError) as invalid:
        load_train(str(path))
    assert invalid.value.message.startswith("invalid train: approval: Input should be")


def _train_of_1000(example: str) -> dict[str, Any]:
    """A train of 1,000 services, each deployed with `examples/<example>`'s request."""
    request = json.loads((ROOT / "examples" / example).read_text())
    deployments = [{**request, "service_name": f"svc-{i:04d}"} for i in range(1000)]
    waves = [{"name": "all", "deployments": deployments}]
    return {"name": "platform", "waves": waves, "approval": "none"}


def test_the_starter_refuses_a_train_too_large_for_temporal_before_starting_anything(
    tmp_path: Path,
):
    """Over Temporal's payload limit, the server refuses the start with a bare "Blob data
    size exceeds limit": the starter says why, and what to do, before it connects."""
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_train_of_1000("analysis.json")))  # 2.5 KB a request
    with pytest.raises(CliError) as too_large:
        load_train(str(path))
    assert too_large.value.code == 2
    assert too_large.value.message.startswith("refused: the train's request is 2,")
    assert "at most 2,097,152 (2 MiB) in one input: split it" in too_large.value.message
    path.write_text(json.dumps(_train_of_1000("verify-run-task.json")))  # 1.8 KB a request
    assert sum(len(wave.deployments) for wave in load_train(str(path)).waves) == 1000


def test_status_summary_and_details_name_the_wave_and_each_service():
    train = TrainRequest.model_validate(EXAMPLE)
    state = TrainState.planned(train)
    state.wave = 1
    state.waves[0].state = "gate_open"
    row = state.waves[0].deployments[0]
    row.stage, row.verification = "verified", "the bake time passed with no alarm"
    state.ended(state.waves[1].deployments[0], TrainOutcome.SUCCEEDED, None)
    now = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)

    assert train_summary("payments", state) == "train payments: wave 1/2, 1/3 done"
    details = train_details(train, state, Gate(), "ecs-canary-train/payments", None, now)
    assert "| myapp | verified |  | the bake time passed with no alarm |" in details
    counts = state.counts()
    assert (counts["succeeded"], counts["in_flight"], counts["pending"]) == (1, 1, 1)
    lines = train_status_lines("ecs-canary-train/payments", state.status("payments", Gate()), now)
    assert lines[:2] == [
        "train:     payments (ecs-canary-train/payments)",
        "wave:      1 of 2 (canary-wave)",
    ]
    assert any("myapp on ecs-canary" in line and "verified" in line for line in lines)


# --- How a deployment's run ended, from the error Temporal recorded ------------------------------


def test_a_failed_run_s_end_carries_the_result_in_its_error_details():
    failed = finished_status("rolled_back", reason="tasks failed to start").result
    assert failed is not None
    error = ApplicationError("rolled back", failed.model_dump(mode="json"), type="RolledBack")

    end = DeploymentRunEnd.failed("ecs-canary/c/api", error)

    assert end.result == failed and end.failure_type == "RolledBack" and end.failure is None


@pytest.mark.parametrize(
    "cause",
    [
        TerminatedError("by an operator"),
        ApplicationError("no result", {"not": "a result"}, type="Odd"),
        ApplicationError("no details at all"),
    ],
    ids=["terminated", "details-not-a-result", "no-details"],
)
def test_a_run_ended_without_a_readable_result_says_what_ended_it(cause: BaseException):
    end = DeploymentRunEnd.failed("ecs-canary/c/api", cause)

    assert end.result is None and end.failure == f"{type(cause).__name__}: {cause}"
