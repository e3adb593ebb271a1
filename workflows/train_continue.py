"""A release train's continue-as-new: when it is due (ecs_canary.train: between two waves from
CONTINUE_AS_NEW_AFTER_EVENTS, within a wave only past CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS),
what a run carries to the next (`TrainContinued`: the rows, the wave, the runs started and what
each was told, what to put back, the hold, the policy, and the memo its deployments check), and
how the next run takes it up.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary import train as train_contract
    from ecs_canary.hold import HoldState
    from ecs_canary.policy import PlatformPolicy
    from ecs_canary.train import (
        PackedTrainContinued,
        TrainContinued,
        TrainProgress,
        TrainRequest,
    )
    from workflows.payloads import continuation
    from workflows.train_state import TrainState
    from workflows.train_steering import TrainDeployments


def due(*, in_wave: bool) -> bool:
    """Whether the history is long enough to continue as new: within a wave, only when the
    wave would not fit in one run."""
    if in_wave:
        limit = train_contract.CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS
    else:
        limit = train_contract.CONTINUE_AS_NEW_AFTER_EVENTS
    return workflow.info().get_current_history_length() >= limit


def continued(payload: Any) -> TrainContinued | None:
    """The progress an earlier run carried over, packed by the run before this one, when this
    run is its continuation (workflows.payloads.continuation)."""
    packed = continuation(payload, PackedTrainContinued, lambda packed: packed.packed_by_run)
    return packed.unpack() if packed is not None else None


def resumed_state(progress: TrainProgress, hold: HoldState) -> TrainState:
    """The state as the earlier run left it, on this run's `hold` (the desk and the pause
    messages keep it), paused or not as it was."""
    hold.paused, hold.freeze_overridden_by = progress.paused, progress.freeze_overridden_by
    resumed = TrainState.resumed(
        progress.waves,
        progress.wave,
        progress.stop_reason,
        progress.rolled_out,
        progress.notifications,
    )
    return replace(resumed, hold=hold)


def continue_train(
    request: TrainRequest,
    state: TrainState,
    deployments: TrainDeployments,
    policy: PlatformPolicy | None,
    putting_back: bool,
) -> NoReturn:
    """Continue as new, carrying the train's progress (`TrainContinued`) and the memo of what
    it sent (workflows.train_sent)."""
    progress = TrainProgress(
        waves=state.waves,
        wave=state.wave,
        stop_reason=state.stop_reason,
        rolled_out=state.rolled_out,
        run_ids=deployments.run_ids,
        told=deployments.told,
        cancelled=sorted(deployments.cancelled),
        ended=sorted(deployments.ended),
        notifications=state.notifications,
        paused=state.hold.paused,
        freeze_overridden_by=state.hold.freeze_overridden_by,
        policy=policy,
        putting_back=putting_back,
    )
    carried = TrainContinued(request=request, progress=progress)
    packed = PackedTrainContinued.pack(carried, workflow.info().run_id)
    workflow.continue_as_new(packed, memo=deployments.sent.memo)
