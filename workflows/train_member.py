"""A deployment that belongs to a release train (`request.train`, see ecs_canary.train): its
gate never waits for a person. Once its canary has passed its automatic verification (steps,
alarms, bake, canary analysis), it tells the train and waits for the train's decision for its
wave; an alarm still rejects it meanwhile.

A canary that would need a person on its own (a failed step with `on_step_failure: "gate"`, a
`marginal` analysis with `on_marginal: "gate"`) is rejected instead: one decision for a whole
wave stands on every canary having passed by itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.train import train_sent_decision
    from ecs_canary.train import (
        CANARY_VERIFIED_SIGNAL,
        DEPLOYMENT_ENDED_SIGNAL,
        CanaryVerified,
        DeploymentEnded,
        TrainDecision,
        TrainDecisionCheck,
    )
    from workflows.failures import failure_reason
    from workflows.run_part import RunContext


# A wave's canaries all ask at once when its decision comes, and Temporal buffers few queries
# while the train's workflow task runs ("consistent query buffer is full"): asked again until
# answered, for up to `_ASK_THE_TRAIN_FOR`; a decision not confirmed is not taken.
_ASK_THE_TRAIN = timedelta(seconds=60)
_ASK_THE_TRAIN_FOR = timedelta(minutes=15)
_ASK_THE_TRAIN_RETRIES = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5)
)


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
    verified = CanaryVerified(workflow_id=workflow.info().workflow_id, summary=summary)
    await workflow.get_external_workflow_handle(train).signal(CANARY_VERIFIED_SIGNAL, verified)
    await wait_for_decision()


async def tell_the_train_it_ended(run: RunContext) -> None:
    """Say to the train this deployment belongs to (if any) that its run ends now: the train
    reads the result from Temporal (the run that started this one may have continued as new,
    and a continued run has no child to wait for)."""
    train = run.request.train
    if train is None:
        return
    ended = DeploymentEnded(workflow_id=workflow.info().workflow_id)
    try:
        await workflow.get_external_workflow_handle(train).signal(DEPLOYMENT_ENDED_SIGNAL, ended)
    except FailureError as err:  # the train has ended (terminated): nobody to tell
        why = failure_reason(err)[1]
        workflow.logger.info(f"Could not tell {train} that this run ended: {why}")


async def take_train_decision(run: RunContext, payload: Any) -> None:
    """The train's decision, from the `train_decision` signal: taken only from the train this
    deployment belongs to, once the train confirms it sent it (anyone may send the signal and
    name the train), and only while the gate can still take it (else logged)."""
    try:
        decision = TrainDecision.model_validate(payload)
    except ValidationError as err:
        workflow.logger.warning(f"Ignored an unreadable train decision: {err.error_count()} errors")
        return
    train = run.request.train
    if decision.train != train:
        workflow.logger.warning(
            f"Ignored a decision of {decision.train!r}: this deployment belongs to "
            f"{train or 'no release train'}"
        )
        return
    if not await _sent_by(train, decision):
        workflow.logger.warning(
            f"Ignored a {decision.action} by {decision.by!r} in the name of {train}: the train "
            "did not send it"
        )
        return
    if not run.gate.follow_train(decision, workflow.now()):
        workflow.logger.info(f"The train's {decision.action} came too late for this run's gate")


async def _sent_by(train: str, decision: TrainDecision) -> bool:
    """Ask the train (its `decision_for` query, by workflow id) whether it sent `decision` to
    this deployment; a train that cannot be asked sent nothing as far as this run knows."""
    here = workflow.info().workflow_id
    check = TrainDecisionCheck(train=train, workflow_id=here, decision=decision)
    try:
        return await workflow.execute_local_activity(
            train_sent_decision,
            check,
            start_to_close_timeout=_ASK_THE_TRAIN,
            schedule_to_close_timeout=_ASK_THE_TRAIN_FOR,
            retry_policy=_ASK_THE_TRAIN_RETRIES,
            summary=f"Confirm the {decision.action} with {train}",
        )
    except ActivityError as err:
        workflow.logger.warning(f"Could not ask {train}: {failure_reason(err)[1]}")
        return False


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
