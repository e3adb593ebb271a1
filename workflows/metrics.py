"""The product's metrics recorded from workflow code, all at a run's stage transitions.

They go through `workflow.metric_meter()`, which records nothing while the workflow replays:
a worker that replays a run (after a restart, a cache eviction, a query on a closed run, the
`Replayer`) does not count its deployments, steps or gate waits again. What is recorded is
what only the run knows, when it happens: a deployment started or ended, how long its gate
waited, how its verification steps and its canary analysis ended, how a train ended.

How many deployments are in flight, and how many gates are open, are not recorded here: a
count kept up and down from workflow code would be lost with the process that kept it, while
the runs go on elsewhere (see `ecs_canary.in_flight`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from ecs_canary.gate import Gate
    from ecs_canary.models import Stage
    from ecs_canary.telemetry import (
        ANALYSIS_VERDICTS,
        GATE_WAIT,
        HELP,
        TRAINS_ENDED,
        VERIFICATION_STEPS,
    )
    from ecs_canary.telemetry import DEPLOYMENTS_ENDED as ENDED
    from ecs_canary.telemetry import DEPLOYMENTS_STARTED as STARTED
    from workflows.state import DeploymentState


def stage_changing(state: DeploymentState, gate: Gate, stage: Stage) -> None:
    """Called as the run enters `stage` (before its state records it): the first stage
    starts the deployment, leaving verification records how it went, and `finished` ends it
    with its outcome."""
    meter = workflow.metric_meter()
    if not state.stages:
        meter.create_counter(STARTED, HELP[STARTED]).add(1)
    if state.stage == Stage.VERIFICATION and stage != Stage.VERIFICATION:
        _verification_ended(state, gate)
    if stage == Stage.FINISHED and state.outcome is not None:
        ended = meter.create_counter(ENDED, HELP[ENDED])
        ended.add(1, {"outcome": state.outcome.value})


def _verification_ended(state: DeploymentState, gate: Gate) -> None:
    """The gate's wait (if it opened for a person), each step's result and the analysis's
    verdict, once the run leaves verification however it does."""
    meter = workflow.metric_meter()
    if gate.opened_at is not None:
        decision = gate.decision
        decided_at = decision.at if decision is not None else workflow.now()
        waits = meter.create_histogram_timedelta(GATE_WAIT, HELP[GATE_WAIT], unit="duration")
        waits.record(
            max(decided_at - gate.opened_at, timedelta(0)),
            {
                "decision": decision.action if decision is not None else "none",
                "via": decision.via if decision is not None else "none",
            },
        )
    steps = meter.create_counter(VERIFICATION_STEPS, HELP[VERIFICATION_STEPS])
    for step in state.verification_steps:
        steps.add(1, {"type": step.type, "result": step.state})
    if state.analysis is not None and state.analysis.verdict is not None:
        verdicts = meter.create_counter(ANALYSIS_VERDICTS, HELP[ANALYSIS_VERDICTS])
        verdicts.add(1, {"verdict": state.analysis.verdict})


def train_ended(outcome: str) -> None:
    """A release train closed with `outcome` (succeeded, stopped, cancelled)."""
    trains = workflow.metric_meter().create_counter(TRAINS_ENDED, HELP[TRAINS_ENDED])
    trains.add(1, {"outcome": outcome})
