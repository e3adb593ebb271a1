"""A release train: many deployments in waves, one decision per wave, and the line stopped at
the first failure (issue 25). The train's request, what it reports, and the two messages it
exchanges with its deployments.

Each deployment of a train is an ordinary `DeploymentRequest`, validated as when it runs alone
(and run as a child `EcsCanaryDeployment` with the workflow id it would have alone). The train
adds its own gate: `approvers`, `min_approvals`, `require_signed_decisions`, `timeout_seconds`
and `on_timeout` mean what they mean in a deployment's `verification`, for the train's gate.
Every model refuses unknown fields.
"""

from __future__ import annotations

import base64
import zlib
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from temporalio.exceptions import ApplicationError

from ecs_canary.names import train_workflow_id_for
from ecs_canary.notifications import MAX_NOTIFICATIONS, Notification, NotificationState
from ecs_canary.policy import PlatformPolicy
from ecs_canary.request import DeploymentRequest, VerificationSettings
from ecs_canary.status import (
    Decision,
    DecisionAction,
    DecisionAttempt,
    DeploymentResult,
    Paused,
    PreviousService,
)
from ecs_canary.strict import MAX_SECONDS, StrictModel

# The train's messages to its deployments and theirs to it (not for people: see the README).
TRAIN_DECISION_SIGNAL = "train_decision"
CANARY_VERIFIED_SIGNAL = "canary_verified"
# In a wave no person decides, the train starts each deployment with its approval already in the
# deployment's memo (a `TrainDecision`, the parent's word at the start): the canary takes it once
# it passes its verification, with no message either way (workflows.train_member).
TRAIN_APPROVAL_MEMO = "train_approval"
# A deployment of a train that ends cancelled writes its result here (a cancelled run's result
# does not reach its error), so that the train tells a canary stopped before its rollout from a
# rollout rolled back (activities.train.ended_deployments).
CANCELLED_RESULT_MEMO = "train_cancelled_result"

# The train's history is kept short (Temporal warns at 10,240 events): it continues as new,
# carrying its progress (`TrainContinued`). A deployment costs the train about 8 events (10 to
# 11 in a wave a person decides).
# - Between two waves (and between two services it puts back), once its history holds
#   CONTINUE_AS_NEW_AFTER_EVENTS: nothing is in flight, so no deployment's signal races the
#   continuation.
# - Within a wave only past CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS (a wave too large for one run),
#   at its next quiet moment. There its deployments keep signalling, Temporal refuses a
#   continuation while a signal is unhandled ("UnhandledCommand"), and the worker then replays
#   the run's whole history before it tries again: seconds for thousands of events, which a
#   `status` query waits for.
CONTINUE_AS_NEW_AFTER_EVENTS = 1000
CONTINUE_AS_NEW_IN_WAVE_AFTER_EVENTS = 6000
# Temporal records the close of a child on the run of the train that started it, under that
# run's lock and as a workflow task of the train. A wave of 600 ending within seconds kept the
# train's run busy with its children's closes: its lock was taken for a close at high priority
# while its own next workflow task waited at low priority, and a `status` query waits for that
# task (1-2.3 s at the busiest moment of the bench's train). So in a wave no person decides (no
# deployment signals the train there), a run of the train that has started
# HAND_OVER_AFTER_STARTS deployments still in flight hands them over: it continues as new at
# its next quiet moment, before they can end, and their closes land on the run that ended,
# where they wait for no one. The runs of the train after it read how they ended from
# Temporal's visibility (`EndedDeploymentsInput.closed_since`), every second while they end.
HAND_OVER_AFTER_STARTS = 150
# How often a run of the train lists the closes of the deployments an earlier run started: every
# second while they end, a second more after each listing that found none, up to five (a wave
# that bakes for hours costs a listing every 5 s, as the describes before it did).
SWEEP_LISTED_FIRST = timedelta(seconds=1)
SWEEP_LISTED_AT_MOST = timedelta(seconds=5)


def sweep_interval(listings_without_ends: int) -> timedelta:
    """The wait before the next listing of the closes of handed-over deployments, given how
    many listings in a row found none."""
    grown = SWEEP_LISTED_FIRST * (1 + max(listings_without_ends, 0))
    return min(grown, SWEEP_LISTED_AT_MOST)


# Deployments a train is starting at once (started, not yet running). Each start is one of
# Temporal's background tasks on the train, which waits at most half a second for the train's
# lock and is then deferred by a growing backoff; a wave's 300 starts asked for at once queued
# there behind each other and the train's own workflow tasks, and took 11 to 49 s to run where
# they take 2 s on an idle server. A few at a time, each start that runs lets the next one go.
# Since a deployment's end no longer messages the train, fewer go faster (bench: the train of
# 1,000): with 20, a wave of 600 started in 11.6-17.6 s in the six runs of its first trial, 4
# starts over 2 s in all; with 40, in 19 and 22 s in two, with 81 and 47 starts over 2 s and the
# train's `status` waiting up to 2.0 and 2.2 s meanwhile. Over 17 runs with 20, on a host whose
# speed varied: 11.6-30 s, no start over 2 s in ten runs, 4-41 in the others. (With 20 while
# ends still messaged the train: 14-55 s.)
STARTS_AT_ONCE = 20
# A start asked for longer ago than this is waiting out the server's backoff (its waits for the
# train's lock ran out), which can last tens of seconds: in two of three runs of the bench's
# train, 46 and 33 of wave four's starts took over 2 s (one 35 s), and the wave's starts were
# asked for over 40 and 50 s, against 14 s in the third, where none did. Such a start stops
# counting among `STARTS_AT_ONCE`, so the next ones go, up to twice that many being started.
STRAGGLING_START = timedelta(seconds=2)


def room_to_start(asked_at: Iterable[datetime], now: datetime) -> int:
    """How many more deployments a wave may start at `now`, given when each start still being
    made was asked for: `STARTS_AT_ONCE`, less the starts asked for within
    `STRAGGLING_START`, and never more than twice `STARTS_AT_ONCE` being started at once."""
    asked = list(asked_at)
    recent = sum(1 for at in asked if now - at < STRAGGLING_START)
    return max(0, min(STARTS_AT_ONCE - recent, 2 * STARTS_AT_ONCE - len(asked)))


_NAME = r"^[A-Za-z0-9_.-]{1,100}$"
# Deployments in flight at once within a wave, unless the request says otherwise.
DEFAULT_MAX_PARALLEL = 50
MAX_DEPLOYMENTS = 1000

TrainApproval = Literal["per_wave", "once", "none"]
TrainOnFailure = Literal["stop", "roll_back_train"]


class TrainWave(StrictModel):
    name: str = Field(pattern=_NAME)
    deployments: list[DeploymentRequest] = Field(min_length=1, max_length=MAX_DEPLOYMENTS)


class TrainRequest(StrictModel):
    name: str = Field(pattern=_NAME)
    waves: list[TrainWave] = Field(min_length=1)
    # "per_wave": a person decides each wave once all its canaries passed; "once": the first
    # wave only, then the rest run on their own; "none": no person decides.
    approval: TrainApproval = "per_wave"
    approvers: list[str] = Field(default_factory=list)
    min_approvals: int = Field(1, ge=1)
    require_signed_decisions: bool = False
    timeout_seconds: float = Field(3600, gt=0, le=MAX_SECONDS)
    on_timeout: Literal["reject", "approve"] = "reject"
    max_parallel: int = Field(DEFAULT_MAX_PARALLEL, ge=1, le=MAX_DEPLOYMENTS)
    on_failure: TrainOnFailure = "stop"
    notifications: list[Notification] = Field(default_factory=list, max_length=MAX_NOTIFICATIONS)

    @model_validator(mode="after")
    def _valid_train(self) -> TrainRequest:
        self.gate_settings()  # approvers and min_approvals, checked as a deployment's
        names = Counter(wave.name for wave in self.waves)
        if twice := [name for name, count in names.items() if count > 1]:
            raise ValueError(f"wave names must be unique: {', '.join(twice)} named twice")
        total = sum(len(wave.deployments) for wave in self.waves)
        if total > MAX_DEPLOYMENTS:
            raise ValueError(f"a train has at most {MAX_DEPLOYMENTS} deployments, not {total}")
        for wave in self.waves:
            for deployment in wave.deployments:
                if deployment.train is not None:
                    raise ValueError(
                        f"wave {wave.name}: {deployment.service_name}: `train` is set by the "
                        "train itself; leave it out"
                    )
        for index, wave in enumerate(self.waves):
            if self.gated(index) and len(wave.deployments) > self.max_parallel:
                raise ValueError(
                    f"wave {wave.name} waits at one gate with its {len(wave.deployments)} "
                    f"canaries in flight together: raise max_parallel ({self.max_parallel}) "
                    "to at least that, or split the wave"
                )
        return self

    def gated(self, wave_index: int) -> bool:
        """Whether a person decides this wave (before the platform policy has its say)."""
        return self.approval == "per_wave" or (self.approval == "once" and wave_index == 0)

    def gate_settings(self) -> VerificationSettings:
        """The train's gate, in the terms of a deployment's (`ecs_canary.gate.Gate`)."""
        return VerificationSettings(
            approvers=self.approvers,
            min_approvals=self.min_approvals,
            require_signed_decisions=self.require_signed_decisions,
            timeout_seconds=self.timeout_seconds,
            on_timeout=self.on_timeout,
        )

    @property
    def workflow_id(self) -> str:
        return train_workflow_id_for(self.name)


# Temporal's default limit on one payload (the server's `limit.blobSize.error`): it refuses a
# start whose input is larger, and the SDK fails the workflow task of a command carrying one.
PAYLOAD_LIMIT_BYTES = 2 * 1024 * 1024


def request_too_large(request: TrainRequest) -> str | None:
    """Why the train cannot be started (None if it can): its request, as JSON, is over the
    payload limit, and Temporal would refuse the start with a bare "Blob data size exceeds
    limit"."""
    size = len(request.model_dump_json().encode())
    if size < PAYLOAD_LIMIT_BYTES:
        return None
    return (
        f"the train's request is {size:,} bytes of JSON, and Temporal takes at most "
        f"{PAYLOAD_LIMIT_BYTES:,} ({PAYLOAD_LIMIT_BYTES // 2**20} MiB) in one input: split it "
        "into smaller trains (fewer services each), or shorten its deployments' requests"
    )


def service_named_twice(request: TrainRequest) -> str | None:
    """Why the train is refused when one service appears twice in it (None if none does): a
    service is never deployed by two runs at once."""
    waves_of: dict[str, list[str]] = {}  # workflow id -> the waves that name it
    for wave in request.waves:
        for deployment in wave.deployments:
            waves = waves_of.setdefault(deployment.workflow_id, [])
            waves.append(wave.name)
            if len(waves) > 1:
                where = ", ".join(dict.fromkeys(waves))
                return (
                    f"service {deployment.service_name} on cluster {deployment.cluster} is "
                    f"named twice in this train (wave {where})"
                )
    return None


# --- What the train reports ---------------------------------------------------------------


class TrainOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    PUT_BACK = "put_back"
    NOT_STARTED = "not_started"


# Where a deployment of the train stands, as the train knows it: not started yet, its canary
# deploying and verifying, verified and waiting for the train's decision, approved (canary
# delete and rolling deploy), finished. In a wave no person decides, a deployment is started
# `approved` up front and stays so until it finished: its canary, verification and rollout run
# on their own, and the train hears of it only when it ends.
TrainStage = Literal["not_started", "canary", "verified", "promoting", "approved", "finished"]
WaveState = Literal["pending", "running", "gate_open", "succeeded", "stopped", "not_started"]
TrainEnd = Literal["succeeded", "stopped", "cancelled"]


class TrainDeployment(StrictModel):
    service: str
    cluster: str
    workflow_id: str
    stage: TrainStage = "not_started"
    outcome: TrainOutcome | None = None
    reason: str | None = None
    # How its canary passed its automatic verification (steps, alarms, bake, analysis).
    verification: str | None = None


class TrainWaveStatus(StrictModel):
    name: str
    state: WaveState = "pending"
    deployments: list[TrainDeployment]
    # The decision that went to every canary of the wave (None until there is one).
    decision: Decision | None = None
    # When the train started the wave (None while it is pending).
    began: datetime | None = None


class TrainServiceOutcome(StrictModel):
    wave: str
    service: str
    cluster: str
    workflow_id: str
    outcome: TrainOutcome
    reason: str | None


class TrainResult(StrictModel):
    name: str
    outcome: TrainEnd
    reason: str | None
    services: list[TrainServiceOutcome]


class TrainStatus(StrictModel):
    """What the train's `status` query answers."""

    name: str
    # The wave running now, 1-based (0 before the first starts); `waves[wave - 1]`.
    wave: int
    waves: list[TrainWaveStatus]
    gate_open: bool
    gate_deadline: datetime | None
    # The current wave's gate: its decision, approvals and every attempt.
    decision: Decision | None
    approvals: list[str]
    min_approvals: int
    attempts: list[DecisionAttempt]
    refused_attempts_dropped: int = 0
    signed_decisions_required: bool | None = None
    # Deployments per outcome so far, and those still running or not started (`in_flight`,
    # `pending`).
    counts: dict[str, int]
    outcome: TrainEnd | None = None
    result: TrainResult | None = None
    # As a deployment's: set while the train is paused, and while a freeze window holds it
    # between waves.
    paused: Paused | None = None
    frozen_until: datetime | None = None
    frozen_window: str | None = None
    # The train's notifications (`notifications` in the request): each event to each receiver.
    notifications: list[NotificationState] = Field(default_factory=list)


# --- The messages between the train and its deployments ------------------------------------


class TrainDecision(StrictModel):
    """The train's decision for its wave, sent to each of the wave's deployments: the deployment
    records it as the train's (`via: train`), with who decided."""

    train: str
    wave: str
    action: DecisionAction
    by: str | None
    reason: str | None
    signed: bool = False
    approvals: list[str] = Field(default_factory=list)


class CanaryVerified(StrictModel):
    """A deployment's word to its train: its canary passed its automatic verification and
    waits for the train's decision."""

    workflow_id: str
    summary: str


class TrainReport(StrictModel):
    """A deployment's report to its train that its canary passed (the `canary_verified`
    signal's payload), sent by the local activity `report_to_train`."""

    train: str
    report: CanaryVerified


class DeploymentRun(StrictModel):
    """A deployment's run the train started."""

    workflow_id: str
    run_id: str


class EndedDeploymentsInput(StrictModel):
    runs: list[DeploymentRun]
    # True: each run has said it ended (wait the moment it takes to close); False: a sweep,
    # only the runs already closed (one terminated by hand says nothing).
    wait: bool
    # A sweep that lists the train's children closed since then (Temporal's visibility: one
    # query, not a describe of each run), for runs an earlier run of the train started after
    # that time. A close not yet listed is found by a later sweep.
    closed_since: datetime | None = None

    @model_validator(mode="after")
    def _listing_is_a_sweep(self) -> EndedDeploymentsInput:
        if self.closed_since is not None and self.wait:
            raise ValueError("closed_since lists the runs already closed: only with wait false")
        return self


class DeploymentRunEnd(StrictModel):
    """How a deployment's run ended: its result (`DeploymentResult`, also what a failed run's
    error carries), cancelled, or why there is neither (terminated, timed out)."""

    workflow_id: str
    result: DeploymentResult | None = None
    # The type of the error a failed run ended with (`TasksFailed`, `RolledBack`, ...).
    failure_type: str | None = None
    cancelled: bool = False
    failure: str | None = None

    @classmethod
    def failed(cls, workflow_id: str, cause: BaseException | None) -> DeploymentRunEnd:
        """A failed run's end, from the error Temporal recorded (read by a client, or by the
        train that started the run): the result its details carry, else why there is none (a
        run terminated or timed out)."""
        if isinstance(cause, ApplicationError) and cause.details:
            try:
                result = DeploymentResult.model_validate(cause.details[0])
            except ValidationError:
                pass
            else:
                return cls(workflow_id=workflow_id, result=result, failure_type=cause.type)
        return cls(workflow_id=workflow_id, failure=f"{type(cause).__name__}: {cause}")


# --- What a train carries when it continues as new ------------------------------------------


class RolledOut(StrictModel):
    """A service the train rolled out, with what its deployment recorded before it touched the
    service (None: it created the service)."""

    workflow_id: str
    previous: PreviousService | None


class TrainProgress(StrictModel):
    """Everything a run of the train knows that the next run needs: where each deployment
    stands, the wave, why the line stopped, what to put back, and what each deployment in
    flight was told."""

    waves: list[TrainWaveStatus]
    wave: int
    stop_reason: str | None
    rolled_out: list[RolledOut]
    # workflow id -> the run the train started (its result is read from that run).
    run_ids: dict[str, str]
    # workflow id -> the decision the train sent it.
    told: dict[str, TrainDecision]
    cancelled: list[str]
    # Those that said they ended, their result not read yet.
    ended: list[str]
    notifications: list[NotificationState]
    policy: PlatformPolicy | None
    # The line stopped and the services rolled out are being put back (`rolled_out`: those
    # still to put back).
    putting_back: bool = False
    # The hold (workflows.hold): a pause stays in force across runs, and so does an approver's
    # override of the freeze windows.
    paused: Paused | None = None
    freeze_overridden_by: str | None = None


class TrainContinued(StrictModel):
    """What a train's run carries to the run that continues it: taken only by a run that
    Temporal started as the continuation of another (a client cannot start one), and carried
    packed (`PackedTrainContinued`)."""

    request: TrainRequest
    progress: TrainProgress


# The largest TrainContinued a run unpacks: a train of MAX_DEPLOYMENTS carries a few MB of JSON.
_UNPACKED_LIMIT_BYTES = 64 * 1024 * 1024


class PackedTrainContinued(StrictModel):
    """A TrainContinued as zlib-compressed JSON (base64), the input of a continuation.

    A continuation whose input is over Temporal's payload limit (`PAYLOAD_LIMIT_BYTES`) fails its
    workflow task and every retry of it: the train would stand still, its deployments in
    flight left to themselves. A train of 1,000 carries every deployment's request and
    its progress: 1.5 MB of JSON with the benchmark's small requests, more with real ones
    (1-2.5 KB each in examples/). Their JSON repeats itself from one service to the next, and
    packed it is a small part of that."""

    packed: str
    # The run that packed it: the run a genuine continuation continues
    # (workflows.payloads.continuation).
    packed_by_run: str
    _json: bytes = PrivateAttr(default=b"")

    @model_validator(mode="after")
    def _unpacks(self) -> PackedTrainContinued:
        """Unpacked as it is validated, so that what cannot be unpacked is a ValidationError
        like any other input the train refuses (its first task never fails on it)."""
        try:
            squeezed = base64.b64decode(self.packed, validate=True)
            unpacker = zlib.decompressobj()
            self._json = unpacker.decompress(squeezed, _UNPACKED_LIMIT_BYTES)
        except (ValueError, zlib.error) as err:
            raise ValueError(f"not a packed train continuation: {err}") from None
        if unpacker.unconsumed_tail or not unpacker.eof:
            raise ValueError("not a packed train continuation: truncated or too large")
        return self

    @classmethod
    def pack(cls, continued: TrainContinued, run_id: str) -> PackedTrainContinued:
        """`continued`, packed by the run `run_id` as it continues as new."""
        squeezed = zlib.compress(continued.model_dump_json().encode(), level=6)
        return cls(packed=base64.b64encode(squeezed).decode("ascii"), packed_by_run=run_id)

    def unpack(self) -> TrainContinued:
        """The TrainContinued packed (a ValidationError if it is not one)."""
        return TrainContinued.model_validate_json(self._json)
