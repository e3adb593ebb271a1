"""What holds a run without deciding it: a person's pause, and a freeze window of the platform.

A deployment's state and a release train's each keep one `HoldState`; `workflows.hold` waits
on it and the `status` query reports it. The rules for `pause`, `resume` and `override_freeze`
are pure functions of it, so the Update validators and the signal handlers apply the same ones
(the approver and signing rules are the gate's, `ecs_canary.gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ecs_canary.status import HoldAction, Paused
from ecs_canary.strict import StrictModel
from ecs_canary.text import utc_clock

HOLD_ACTIONS: tuple[HoldAction, ...] = ("pause", "resume", "override_freeze")
# A release train's pause or resume, relayed to each deployment of it in flight (not for
# people: a person pauses the train, or a deployment with `pause`).
TRAIN_HOLD_SIGNAL = "train_hold"


@dataclass
class HoldState:
    paused: Paused | None = None
    # The freeze the run waits out now: when it ends, and the window's name.
    frozen_until: datetime | None = None
    frozen_window: str | None = None
    # Who let the run go on through freeze windows (`override_freeze`), for the rest of the run.
    freeze_overridden_by: str | None = None

    def refusal(self, action: HoldAction) -> str | None:
        """Why `action` changes nothing now; None if it may be taken."""
        if action == "pause" and self.paused is not None:
            return (
                f"the run is already paused (by {self.paused.by} at "
                f"{self.paused.at:%Y-%m-%d %H:%M:%S} UTC); resume it first"
            )
        if action == "resume" and self.paused is None:
            return "the run is not paused: there is nothing to resume"
        if action == "override_freeze" and self.freeze_overridden_by is not None:
            by = self.freeze_overridden_by
            return f"freeze windows were already overridden for this run (by {by})"
        return None

    def frozen(self, window: str, until: datetime) -> None:
        self.frozen_window, self.frozen_until = window, until

    def thawed(self) -> None:
        self.frozen_window = self.frozen_until = None


def hold_lines(state: HoldState, workflow_id: str, run_id: str | None, now: datetime) -> list[str]:
    """The Web UI's first lines while a run is paused or frozen (`**PAUSED** by alice ...`),
    with the Update that lets it go on; none otherwise. Instants, as all the details' times."""
    this_run = f"{workflow_id} --run-id {run_id}" if run_id else workflow_id
    lines = []
    if state.paused is not None:
        why = f": {state.paused.reason}" if state.paused.reason else ""
        lines.append(
            f"**PAUSED** by {state.paused.by} at {utc_clock(state.paused.at, now)}{why}; "
            f"resume with {_update_command(this_run, 'resume')}"
        )
    if state.frozen_until is not None:
        lines.append(
            f"**FROZEN** by freeze window {state.frozen_window} until "
            f"{utc_clock(state.frozen_until, now)}; an approver may let this run go on with "
            f"{_update_command(this_run, 'override_freeze')}"
        )
    return lines


def _update_command(this_run: str, action: HoldAction) -> str:
    return (
        f"`temporal workflow update execute --workflow-id {this_run} --name {action} "
        """--input '{"by":"you"}'`"""
    )


class TrainHold(StrictModel):
    """The train's pause (None: resumed), as it relays it to its deployments in flight."""

    train: str
    paused: Paused | None
