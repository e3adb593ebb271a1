"""What several unit-test modules share."""

from __future__ import annotations

import pytest

from activities.aws import CallBudget

# A check-in of a caller queued for the ECS budget (its wait's heartbeat, and where a cancelled
# activity stops) comes once a second in the worker; these tests wait for one or several.
QUICK_CHECK_IN_SECONDS = 0.1


@pytest.fixture
def quick_check_ins(monkeypatch: pytest.MonkeyPatch) -> float:
    """Callers queued for a CallBudget, or for a DescribeServices batch, check in ten times as
    often as in the worker: what happens at a check-in is the same, and it comes sooner."""
    monkeypatch.setattr(CallBudget, "CHECK_IN_SECONDS", QUICK_CHECK_IN_SECONDS)
    return QUICK_CHECK_IN_SECONDS
