"""A deployment that belongs to a release train (`request.train`, see ecs_canary.train): its
gate never waits for a person. Once its canary has passed its automatic verification (steps,
alarms, bake, canary analysis), it tells the train and waits for the train's decision for its
wave; an alarm still rejects it meanwhile. In a wave no person decides, the train started it
with its approval up front (in its memo): it takes that at once, and tells the train nothing
until it ends.

A canary that would need a person on its own (a failed step with `on_step_failure: "gate"`, a
`marginal` analysis with `on_marginal: "gate"`) is rejected instead: one decision for a whole
wave stands on every canary having passed by itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.train import report_to_train
    from ecs_canary.hold import TrainHold
    from ecs_canary.models import DeploymentResult, Outcome
    from ecs_canary.train import (
        CANCELLED_RESULT_MEMO,
        TRAIN_APPROVAL_MEMO,
        CanaryVerified,
        TrainDecision,
        TrainReport,
    )
    from ecs_canary.train_sent import (
        TRAIN_HOLD_MEMO,
        TrainSentCheck,
        decision_digest,
        decision_memo_key,
        hold_digest,
    )
    from workflows.calls import train_message
    from workflows.hold import pause_or_resume
    from workflows.run_part import RunContext
    from workflows.train_sent import sent_by_train

# What a train sends its deployments.
_Message = TypeVar("_Message", TrainDecision, TrainHold)


async def let_the_train_decide(
    run: RunContext,
    summary: str,
    needs_a_person: bool,
    wait_for_decision: Callable[[], Awaitable[bool]],
) -> None:
    """Report the passed verification (`summary`) to the train and wait for its decision."""
    train, gate = run.request.train, run.gate
    assert train is not None, "only for a deployment of a release train"
    if needs_a_person:
        why = (
            "its verification needs a person's decision, and a release train's canary must "
            "pass on its own"
        )
        gate.decide_automatically("reject", "train", why, workflow.now())
        return
    gate.await_train(train)
    approved = approved_up_front(run)
    if approved is not None:  # a wave no person decides: no message either way
        gate.follow_train(approved, workflow.now())
        return
    verified = CanaryVerified(workflow_id=workflow.info().workflow_id, summary=summary)
    sent = await workflow.execute_local_activity(
        report_to_train,
        TrainReport(train=train, report=verified),
        **train_message("Tell the train the canary passed"),
    )
    if not sent:
        raise ApplicationError(
            f"the release train {train} is not running: nobody to decide the canary",
            type="TrainNotRunning",
            non_retryable=True,
        )
    await wait_for_decision()


def approved_up_front(run: RunContext) -> TrainDecision | None:
    """The train's approval this deployment was started with (`TRAIN_APPROVAL_MEMO`), if any:
    its parent is its train (`train_membership_refusal`), so its memo at the start is the
    train's word. Unreadable or in another train's name: none (logged)."""
    if TRAIN_APPROVAL_MEMO not in workflow.memo():
        return None
    memo = workflow.memo_value(TRAIN_APPROVAL_MEMO)
    found = _from_own_train(run, memo, TrainDecision, "approval")
    if found is None or found[0].action != "approve":
        return None
    return found[0]


def keep_a_cancelled_result_for_the_train(run: RunContext, result: DeploymentResult) -> None:
    """Leave the train this deployment belongs to (if any) what it reads as the run closes: the
    train hears of the close from Temporal (the run of the train that started this one, as its
    child's close; a later run, by looking) and reads the result there. A cancelled run's
    result does not reach its error, so it is written into the memo (`CANCELLED_RESULT_MEMO`):
    the train reads there whether a deployment it approved up front had begun its rollout. No
    message to the train: on a train of hundreds each one was another operation on its lock,
    where the next deployments' starts waited."""
    if run.request.train is not None and result.outcome == Outcome.CANCELLED:
        workflow.upsert_memo({CANCELLED_RESULT_MEMO: result.model_dump(mode="json")})


async def take_train_decision(run: RunContext, payload: Any) -> None:
    """The train's decision, from the `train_decision` signal: taken only from the train this
    deployment belongs to, once the train's memo confirms it sent this decision to this run
    (anyone may send the signal and name the train; workflows.train_sent), and only while the
    gate can still take it (else logged)."""
    found = _from_own_train(run, payload, TrainDecision, "decision")
    if found is None:
        return
    decision, train = found
    info = workflow.info()
    check = TrainSentCheck(
        train=train,
        key=decision_memo_key(info.workflow_id),
        digest=decision_digest(decision, info.first_execution_run_id),
    )
    if not await sent_by_train(check, decision.action):
        workflow.logger.warning(
            f"Ignored a {decision.action} by {decision.by!r} in the name of {train}: the train "
            "did not send it"
        )
        return
    if not run.gate.follow_train(decision, workflow.now()):
        workflow.logger.info(f"The train's {decision.action} came too late for this run's gate")


async def follow_train_hold(run: RunContext, payload: Any) -> None:
    """The release train's pause or resume, relayed to this deployment of it (`train_hold`):
    taken only from the train it belongs to, and only while the train's memo says it is the
    train's current hold (else logged). The caller takes one at a time, in the order they came:
    each is checked against the memo as it is when its turn comes."""
    found = _from_own_train(run, payload, TrainHold, "hold")
    if found is None:
        return
    hold, train = found
    what = "resume" if hold.paused is None else "pause"
    check = TrainSentCheck(train=train, key=TRAIN_HOLD_MEMO, digest=hold_digest(hold))
    if not await sent_by_train(check, what):
        workflow.logger.warning(
            f"Ignored a {what} in the name of {train}: it is not the train's current hold"
        )
        return
    pause_or_resume(run.state.hold, run.gate, hold.paused, workflow.now())


def _from_own_train(
    run: RunContext, payload: Any, model: type[_Message], what: str
) -> tuple[_Message, str] | None:
    """The message and the train this deployment belongs to, if the payload is readable and
    names that train (else logged, None)."""
    try:
        message = model.model_validate(payload)
    except ValidationError as err:
        workflow.logger.warning(f"Ignored an unreadable train {what}: {err.error_count()} errors")
        return None
    train = run.request.train
    if message.train != train or train is None:
        workflow.logger.warning(
            f"Ignored a {what} of {message.train!r}: this deployment belongs to "
            f"{train or 'no release train'}"
        )
        return None
    return message, train


def train_membership_refusal(train: str | None) -> str | None:
    """Why a request naming `train` cannot run here (None if it can): only the train itself
    starts its deployments, as its children."""
    if train is None:
        return None
    parent = workflow.info().parent
    if parent is not None and parent.workflow_id == train:
        return None
    return (
        f"Invalid deployment request: train: {train!r} is set by a release train on its own "
        "deployments; leave it out to deploy this service alone"
    )
