"""How a deployment of a release train knows that a `train_decision` or a `train_hold` came from
its train: the train writes what it sends into its own memo first, and the deployment reads
that memo (`describe`) before it takes the message.

Anyone who may signal a run can send either signal and name the train in it, and the
time-skipping test server records no sender on a signal event, so the payload proves nothing.
A run's memo can only be written by the run itself, and reading it is a `describe`: no query,
so no workflow task of the train and no query buffer that fills when a wave of 600 canaries
asks at once. The memo holds a digest per message, not the message, so that it stays small:

- `train_decision/<workflow id>`: the decision sent to that deployment, bound to the run the
  train started (a decision replayed to a later run of the same service does not match);
- `train_hold`: the train's current pause or resume; a deployment takes a relayed hold only
  while it is the train's current one, so an old resume resent while the train is paused
  again is refused.
"""

from __future__ import annotations

import hashlib
import json

from ecs_canary.hold import TrainHold
from ecs_canary.strict import StrictModel
from ecs_canary.train import TrainDecision

TRAIN_HOLD_MEMO = "train_hold"
_DECISION_MEMO_PREFIX = "train_decision/"


def decision_memo_key(workflow_id: str) -> str:
    """The train's memo field that holds what it decided for the deployment `workflow_id`."""
    return f"{_DECISION_MEMO_PREFIX}{workflow_id}"


def is_sent_memo_key(key: str) -> bool:
    """Whether a memo field of the train is one of these records (the memo may hold others)."""
    return key == TRAIN_HOLD_MEMO or key.startswith(_DECISION_MEMO_PREFIX)


def decision_digest(decision: TrainDecision, run_id: str) -> str:
    """The digest of a decision sent to the deployment run `run_id` (its first run's id)."""
    return _digest({"decision": decision.model_dump(mode="json"), "run_id": run_id})


def hold_digest(hold: TrainHold) -> str:
    return _digest({"hold": hold.model_dump(mode="json")})


def _digest(message: dict[str, object]) -> str:
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class TrainSentCheck(StrictModel):
    """A deployment's question to Temporal: does the memo of `train` (its latest run) hold
    `digest` under `key`?"""

    train: str
    key: str
    digest: str
