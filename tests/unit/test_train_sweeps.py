"""How a run of a train looks for the ends of the deployments an earlier run handed over
(ecs_canary.train): a listing every second while they end, less often while none does, and a
listing is only ever a sweep of runs already closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ecs_canary.train import (
    SWEEP_LISTED_AT_MOST,
    SWEEP_LISTED_FIRST,
    DeploymentRun,
    EndedDeploymentsInput,
    sweep_interval,
)

RUN = DeploymentRun(workflow_id="ecs-canary/prod/api", run_id="r1")
WAVE_BEGAN = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


def test_listings_come_every_second_while_deployments_end() -> None:
    assert sweep_interval(0) == SWEEP_LISTED_FIRST == timedelta(seconds=1)


def test_each_listing_that_found_nothing_waits_a_second_more_up_to_five() -> None:
    waits = [sweep_interval(empty).total_seconds() for empty in range(7)]
    assert waits == [1, 2, 3, 4, 5, 5, 5]


@given(st.integers(min_value=-5, max_value=10_000))
def test_the_wait_stays_between_one_and_five_seconds(empty: int) -> None:
    assert SWEEP_LISTED_FIRST <= sweep_interval(empty) <= SWEEP_LISTED_AT_MOST


def test_a_listing_is_a_sweep_of_closed_runs_only() -> None:
    listed = EndedDeploymentsInput(runs=[RUN], wait=False, closed_since=WAVE_BEGAN)
    assert listed.closed_since == WAVE_BEGAN
    with pytest.raises(ValidationError, match="closed_since lists the runs already closed"):
        EndedDeploymentsInput(runs=[RUN], wait=True, closed_since=WAVE_BEGAN)
