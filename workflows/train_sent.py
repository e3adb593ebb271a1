"""Both ends of a release train's proof that it sent a message (ecs_canary.train_sent).

The train (`SentRecord`) writes the digest of each decision and of its current hold into its
memo in the same workflow task as, and before, the signal that carries it: Temporal applies a
task's commands in order, so the memo says so before the signal reaches the deployment. The
memo is carried to the next run when the train continues as new, and holds only what a
deployment in flight may still check; a first run drops what a memo given at its start
claims (the starter's word, not the train's).

The deployment (`sent_by_train`) reads the train's memo with the local activity `train_sent`
(a describe, bounded per worker) before it takes the message.
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.train import train_sent
    from ecs_canary.hold import TrainHold
    from ecs_canary.train import TrainDecision
    from ecs_canary.train_sent import (
        TRAIN_HOLD_MEMO,
        TrainSentCheck,
        decision_digest,
        decision_memo_key,
        hold_digest,
        is_sent_memo_key,
    )
    from workflows.calls import LOCAL_ACTIVITY_FAILED, train_message
    from workflows.failures import failure_reason


class SentRecord:
    """The train's memo of what it sent its deployments (digests, by memo field)."""

    def __init__(self) -> None:
        found = [key for key in workflow.memo() if is_sent_memo_key(key)]
        # What the memo holds, as this run wrote it or inherited it from the run it continues.
        self._memo: dict[str, str] = {}
        if workflow.info().continued_run_id is not None:
            self._memo = {key: workflow.memo_value(key, type_hint=str) for key in found}
        elif found:  # set by whoever started the train: nothing the train sent
            workflow.upsert_memo(dict.fromkeys(found))
        # Fields of deployments that ended: dropped with the next write.
        self._stale: set[str] = set()

    def decisions(self, sent: Mapping[str, tuple[str, TrainDecision]]) -> None:
        """Record the decisions about to be sent: workflow id -> (the run the train started,
        the decision). One memo write for them all."""
        self._write(
            {
                decision_memo_key(workflow_id): decision_digest(decision, run_id)
                for workflow_id, (run_id, decision) in sent.items()
            }
        )

    def hold(self, hold: TrainHold) -> None:
        """Record the hold about to be relayed (the train's current pause, or None)."""
        digest = hold_digest(hold)
        if self._memo.get(TRAIN_HOLD_MEMO) != digest:
            self._write({TRAIN_HOLD_MEMO: digest})

    def forget(self, workflow_id: str) -> None:
        """The deployment `workflow_id` ended: its decision need not be checked any more."""
        key = decision_memo_key(workflow_id)
        if key in self._memo:
            self._stale.add(key)

    @property
    def memo(self) -> dict[str, str]:
        """The memo a continuation of the train starts with: what is still checked."""
        return {key: digest for key, digest in self._memo.items() if key not in self._stale}

    def _write(self, entries: dict[str, str]) -> None:
        if not entries:
            return
        dropped = {key: None for key in self._stale if key not in entries}
        for key in dropped:
            del self._memo[key]
        self._stale.clear()
        self._memo.update(entries)
        workflow.upsert_memo({**dropped, **entries})


async def sent_by_train(check: TrainSentCheck, what: str) -> bool:
    """Whether the memo of the train `check.train` confirms `check` (see the module
    docstring); a train that cannot be read sent nothing as far as this run knows (logged)."""
    train = check.train
    try:
        return await workflow.execute_local_activity(
            train_sent,
            check,
            **train_message(f"Confirm the {what} with {train}"),
        )
    except LOCAL_ACTIVITY_FAILED as err:
        workflow.logger.warning(f"Could not read what {train} sent: {failure_reason(err)[1]}")
        return False
