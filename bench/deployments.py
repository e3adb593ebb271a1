"""One deployment, measured: requests, seeding existing services, running ecs-canary or the
baseline, and the ECS critical path from the emulator's own timestamps."""

from __future__ import annotations

import asyncio
import copy
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, TimeoutType
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client, WorkflowFailureError

from bench import baseline
from ecs_canary.models import DeploymentResult, DeploymentStatus
from ecs_canary.names import WORKFLOW_TYPE

NEW_IMAGE = "nginx:1.27"
OLD_IMAGE = "nginx:1.26"
WAIT_ACTIVITIES = ("wait_for_steady_state", "wait_for_inactive")
# What the SDK's markers in a history stand for.
_LOCAL_ACTIVITY_MARKER = "core_local_activity"
_MARKERS = {_LOCAL_ACTIVITY_MARKER: "local activity", "core_patch": "patch"}
# DescribeServices calls of a deployment besides its waits' polls: the describe_services
# (local) activity (create_service and update_service read first only when they are retried).
NON_WAIT_DESCRIBES = 1


def request(
    seed: dict[str, Any], service: str, desired: int, poll: float, gate: dict[str, Any]
) -> dict[str, Any]:
    """A deployment request for the emulator's seeded account (like tests/support.py's)."""
    return copy.deepcopy(
        {
            "cluster": seed["cluster"],
            "service_name": service,
            "task_definition": {
                "family": f"{service}-task",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [
                    {
                        "name": "web",
                        "image": NEW_IMAGE,
                        "essential": True,
                        "portMappings": [{"containerPort": 80}],
                    }
                ],
            },
            "service_definition": {
                "desiredCount": desired,
                "launchType": "FARGATE",
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": seed["subnets"],
                        "securityGroups": [seed["security_group"]],
                        "assignPublicIp": "DISABLED",
                    }
                },
            },
            "desired_count": desired,
            "poll_interval_seconds": poll,
            "verification": gate,
            "stage_timeouts": {
                "canary_deploy": 300,
                "canary_delete": 300,
                "rolling_deploy": 300,
                "rollback": 300,
            },
        }
    )


def seed_services(ecs: Any, seed: dict[str, Any], services: list[str], desired: int) -> None:
    """Create each service on the old image (the release before) and wait until all are stable."""
    for service in services:
        raw = request(seed, service, desired, 1, {})
        raw["task_definition"]["containerDefinitions"][0]["image"] = OLD_IMAGE
        arn = ecs.register_task_definition(**raw["task_definition"])["taskDefinition"][
            "taskDefinitionArn"
        ]
        ecs.create_service(
            cluster=seed["cluster"],
            serviceName=service,
            taskDefinition=arn,
            **raw["service_definition"],
        )
    waiter = ecs.get_waiter("services_stable")
    for start in range(0, len(services), 10):
        waiter.wait(
            cluster=seed["cluster"],
            services=services[start : start + 10],
            WaiterConfig={"Delay": 0.2, "MaxAttempts": 1500},
        )


@dataclass
class Run:
    """What one deployment did and how long it took (wall-clock seconds, time.time())."""

    variant: str  # "ecs-canary" or "baseline"
    service: str
    started: float
    ended: float
    gate_seconds: float = 0.0
    outcome: str = ""
    task_definition_arn: str | None = None
    result: DeploymentResult | None = None
    history: list[Any] = field(default_factory=list)
    ecs_path: dict[str, float] = field(default_factory=dict)
    calls: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        return self.ended - self.started

    @property
    def wall_without_gate(self) -> float:
        return self.wall - self.gate_seconds

    @property
    def ecs_seconds(self) -> float:
        return sum(self.ecs_path.values())

    @property
    def overhead_ratio(self) -> float:
        return self.wall_without_gate / self.ecs_seconds if self.ecs_seconds else math.nan


def _stage_seconds(result: DeploymentResult, stage: str) -> float:
    for timing in result.stages:
        if timing.stage.value == stage and timing.ended_at is not None:
            return (timing.ended_at - timing.started_at).total_seconds()
    return 0.0


async def run_ecs_canary(
    client: Client,
    task_queue: str,
    body: dict[str, Any],
    decide: str | None = None,
    workflow_id: str | None = None,
) -> Run:
    """Start the workflow and wait for its result. `decide` ("approve"/"reject") sends that
    signal as soon as the status query shows the gate open (queried every 50 ms); None leaves
    the gate to the request's own `verification` settings."""
    body = {k: v for k, v in body.items() if k != "desired_count"}
    service = body["service_name"]
    started = time.time()
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        body,
        id=workflow_id or f"bench/{service}",
        task_queue=task_queue,
        result_type=DeploymentResult,
    )
    if decide is not None:
        while True:
            status = await handle.query("status", result_type=DeploymentStatus)
            if status.gate_open:
                await handle.signal(decide)
                break
            if status.outcome is not None:
                break
            await asyncio.sleep(0.05)
    try:
        result = await handle.result()
    except WorkflowFailureError as err:
        details = getattr(err.cause, "details", None) or [None]
        result = DeploymentResult.model_validate(details[0]) if details[0] else None
    ended = time.time()
    run = Run("ecs-canary", service, started, ended, result=result)
    if result is not None:
        run.outcome = result.outcome.value
        run.task_definition_arn = result.task_definition_arn
        run.gate_seconds = _stage_seconds(result, "verification")
        run.stages = {t.stage.value: _stage_seconds(result, t.stage.value) for t in result.stages}
    return run


async def fetch_history(client: Client, workflow_id: str) -> list[Any]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return list(history.events)


def run_baseline(ecs: Any, body: dict[str, Any], poll: float) -> Run:
    out = baseline.deploy(
        ecs,
        cluster=body["cluster"],
        service=body["service_name"],
        task_definition=body["task_definition"],
        service_definition=body["service_definition"],
        desired_count=body["desired_count"],
        poll_seconds=poll,
    )
    marks = out["marks"]
    run = Run("baseline", body["service_name"], marks["start"], marks["end"])
    run.outcome = "succeeded"
    run.task_definition_arn = out["task_definition_arn"]
    run.stages = {
        "canary_deploy": marks["canary_stable"] - marks["start"],
        "canary_delete": marks["canary_inactive"] - marks["canary_stable"],
        "rolling_deploy": marks["end"] - marks["canary_inactive"],
    }
    return run


def _ts(value: datetime) -> float:
    return value.timestamp()


def ecs_critical_path(ecs: Any, cluster: str, service: str, new_arn: str) -> dict[str, float]:
    """The ECS time a deployment cannot avoid, from the emulator's own timestamps:

    canary_deploy: the canary's deployment createdAt (the CreateService call) -> last canary
                   task startedAt
    canary_delete: first canary task stoppingAt -> last canary task stoppedAt
    rolling_deploy: the main service's new deployment createdAt -> its updatedAt (the moment
                    ECS set rolloutState COMPLETED)
    """
    canary = f"{service}Canary"
    described = {
        s["serviceName"]: s
        for s in ecs.describe_services(cluster=cluster, services=[service, canary])["services"]
    }
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(
        cluster=cluster, serviceName=canary, desiredStatus="STOPPED"
    ):
        arns.extend(page["taskArns"])
    tasks = []
    for start in range(0, len(arns), 100):
        tasks.extend(ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + 100])["tasks"])
    started = [_ts(t["startedAt"]) for t in tasks if t.get("startedAt")]
    stopping = [_ts(t["stoppingAt"]) for t in tasks if t.get("stoppingAt")]
    stopped = [_ts(t["stoppedAt"]) for t in tasks if t.get("stoppedAt")]
    primary = next(d for d in described[service]["deployments"] if d["taskDefinition"] == new_arn)
    if primary.get("rolloutState") != "COMPLETED":
        raise RuntimeError(f"{service}: new deployment is {primary.get('rolloutState')}")
    return {
        "canary_deploy": max(started) - _ts(described[canary]["deployments"][0]["createdAt"]),
        "canary_delete": max(stopped) - min(stopping),
        "rolling_deploy": _ts(primary["updatedAt"]) - _ts(primary["createdAt"]),
    }


def verify_deployed(
    ecs: Any, cluster: str, service: str, new_arn: str | None, desired: int
) -> str | None:
    """None when the main service runs only `new_arn` at `desired` and the canary is INACTIVE;
    otherwise what is wrong."""
    canary = f"{service}Canary"
    found = {
        s["serviceName"]: s
        for s in ecs.describe_services(cluster=cluster, services=[service, canary])["services"]
    }
    main = found.get(service)
    if main is None or new_arn is None:
        return "main service or new task definition missing"
    if main["taskDefinition"] != new_arn:
        return f"main runs {main['taskDefinition']}"
    if (main["desiredCount"], main["runningCount"]) != (desired, desired):
        return f"main desired/running {main['desiredCount']}/{main['runningCount']}"
    if len(main["deployments"]) != 1:
        return f"main has {len(main['deployments'])} deployments"
    if canary in found and found[canary]["status"] != "INACTIVE":
        return f"canary is {found[canary]['status']}"
    return None


# --- History ------------------------------------------------------------------------------


def event_type_counts(events: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        counts[name] = counts.get(name, 0) + 1
    return counts


def activity_summary(events: list[Any]) -> dict[str, Any]:
    """Per history: activities by type (local ones from their markers), retried attempts (and
    those after a heartbeat timeout), and wait polls estimated from each wait's start and end
    (polls land on wall-clock multiples of the poll interval)."""
    scheduled: dict[int, str] = {}
    started: dict[int, Any] = {}
    by_type: dict[str, int] = {}
    markers: dict[str, int] = {}
    retried = heartbeat_timeouts = 0
    waits: list[tuple[float, float]] = []
    for event in events:
        kind = EventType.Name(event.event_type)
        if kind == "EVENT_TYPE_MARKER_RECORDED":
            marker = event.marker_recorded_event_attributes
            name = _MARKERS.get(marker.marker_name, "other marker")
            markers[name] = markers.get(name, 0) + 1
            if marker.marker_name == _LOCAL_ACTIVITY_MARKER:
                local = json.loads(marker.details["data"].payloads[0].data)
                activity_type = f"{local['activity_type']} (local)"
                by_type[activity_type] = by_type.get(activity_type, 0) + 1
                retried += local.get("attempt", 1) > 1
        elif kind == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = name
            by_type[name] = by_type.get(name, 0) + 1
        elif kind == "EVENT_TYPE_ACTIVITY_TASK_STARTED":
            attrs = event.activity_task_started_event_attributes
            started[attrs.scheduled_event_id] = event
            retried += attrs.attempt > 1
            heartbeat_timeouts += attrs.attempt > 1 and _is_heartbeat_timeout(attrs.last_failure)
        elif kind == "EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT":
            failure = event.activity_task_timed_out_event_attributes.failure
            heartbeat_timeouts += _is_heartbeat_timeout(failure)
        elif kind in (
            "EVENT_TYPE_ACTIVITY_TASK_COMPLETED",
            "EVENT_TYPE_ACTIVITY_TASK_FAILED",
        ):
            attrs = (
                event.activity_task_completed_event_attributes
                if kind.endswith("COMPLETED")
                else event.activity_task_failed_event_attributes
            )
            if scheduled.get(attrs.scheduled_event_id) in WAIT_ACTIVITIES:
                begin = started[attrs.scheduled_event_id].event_time.ToMicroseconds() / 1e6
                waits.append((begin, event.event_time.ToMicroseconds() / 1e6))
    return {
        "by_type": by_type,
        "markers": markers,
        "retried_attempts": retried,
        "heartbeat_timeouts": heartbeat_timeouts,
        "waits": waits,
    }


def _is_heartbeat_timeout(failure: Failure) -> bool:
    """A failure that says an attempt missed its heartbeat (the history keeps an attempt's
    last failure only, so a run's count is a lower bound)."""
    while failure.HasField("cause") and not failure.HasField("timeout_failure_info"):
        failure = failure.cause
    return (
        failure.HasField("timeout_failure_info")
        and failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT
    )


def estimated_polls(waits: list[tuple[float, float]], poll: float) -> int:
    """One DescribeServices per poll if nothing were shared: a wait polls at every multiple
    of the poll interval (wall clock) from its start until it ends."""
    return sum(max(1, math.floor(end / poll) - math.floor(begin / poll)) for begin, end in waits)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
