"""The gauges of what is going on now: deployments in flight by stage, and gates open.

They are read from Temporal's own record of the runs, not counted up and down by the runs: a
count kept in a worker's memory is lost when the worker restarts, while its runs go on (on
another worker, or on this one once they next wake up; a run waiting at its gate may not run
a workflow task for hours), and a run that moves between workers would be counted by both or
neither. Temporal's visibility store knows every running deployment and its stage (the
`DeploymentStage` search attribute each run keeps current), whichever worker holds it and
whether any does; each open gate is read from its run's `status` query, asked only of the runs
in verification. So the gauges are right after a restart, a replay or a move, within one
refresh.

Every worker with metrics on reports the same counts for its task queue (namespace and
task_queue labels): take the `max` across workers, not the sum (the dashboard does). Runs in a
namespace without the project's search attributes (they run unlisted) have no stage: they
count as `unknown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.common import MetricMeter
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from ecs_canary import search_attributes as sa
from ecs_canary.config import WorkerSettings
from ecs_canary.models import DeploymentStatus, Outcome, Stage
from ecs_canary.names import WORKFLOW_TYPE
from ecs_canary.telemetry import DEPLOYMENTS_ENDED as ENDED
from ecs_canary.telemetry import DEPLOYMENTS_IN_FLIGHT as IN_FLIGHT
from ecs_canary.telemetry import DEPLOYMENTS_STARTED as STARTED
from ecs_canary.telemetry import GATES_OPEN, HELP

REFRESH_SECONDS = 10.0
UNKNOWN_STAGE = "unknown"
_QUERY_TIMEOUT = timedelta(seconds=5)
# Status queries in flight at once, for the runs in verification.
_QUERIES_AT_ONCE = 10
_WARN_EVERY_SECONDS = 60.0


def running_deployments_query(task_queue: str) -> str:
    return (
        f"WorkflowType='{WORKFLOW_TYPE}' AND ExecutionStatus='Running' AND TaskQueue='{task_queue}'"
    )


def stage_of(execution: WorkflowExecution) -> str:
    stage = execution.typed_search_attributes.get(sa.DEPLOYMENT_STAGE)
    return stage if stage is not None else UNKNOWN_STAGE


class InFlightGauges:
    """Sets the gauges for `task_queue` every `refresh_seconds` until cancelled."""

    STAGES = (*(stage.value for stage in Stage), UNKNOWN_STAGE)

    def __init__(
        self, client: Client, task_queue: str, refresh_seconds: float = REFRESH_SECONDS
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._refresh_seconds = refresh_seconds
        meter: MetricMeter = _runtime_of(client).metric_meter.with_additional_attributes(
            {"namespace": client.namespace, "task_queue": task_queue}
        )
        self._in_flight = meter.create_gauge(IN_FLIGHT, HELP[IN_FLIGHT])
        self._gates_open = meter.create_gauge(GATES_OPEN, HELP[GATES_OPEN])

    async def run(self) -> None:
        """Refresh every `refresh_seconds` until cancelled."""
        log = structlog.get_logger("ecs_canary.in_flight")
        warned_at = float("-inf")
        while True:
            try:
                await self.refresh()
            # Whatever failed (the server unreachable, a run's answer undecodable), the last
            # counts stay until a refresh succeeds: the gauges never stop being kept.
            except Exception as err:  # noqa: BLE001 - logged; the next refresh tries again
                if time.monotonic() - warned_at >= _WARN_EVERY_SECONDS:
                    warned_at = time.monotonic()
                    log.warning("Could not count the deployments in flight", error=str(err))
            await asyncio.sleep(self._refresh_seconds)

    async def refresh(self) -> None:
        """Count the running deployments by stage, and the open gates, once."""
        query = running_deployments_query(self._task_queue)
        running = [execution async for execution in self._client.list_workflows(query)]
        stages = Counter(stage_of(execution) for execution in running)
        verifying = [e for e in running if stage_of(e) == Stage.VERIFICATION.value]
        limit = asyncio.Semaphore(_QUERIES_AT_ONCE)
        open_gates = await asyncio.gather(*(self._gate_open(e, limit) for e in verifying))
        for stage in self.STAGES:
            self._in_flight.set(stages[stage], {"stage": stage})
        self._gates_open.set(sum(open_gates))

    async def _gate_open(self, execution: WorkflowExecution, limit: asyncio.Semaphore) -> bool:
        """Whether the run's gate is open; False for a run that cannot answer (it closed
        meanwhile, or its workflow task fails)."""
        handle = self._client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async with limit:
            try:
                status = await handle.query(
                    "status", result_type=DeploymentStatus, rpc_timeout=_QUERY_TIMEOUT
                )
            except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                return False
        return status.gate_open


def outcomes_from_zero(client: Client, task_queue: str) -> None:
    """Start the deployment counters of every outcome at 0, with the labels the workflow's
    meter gives them: Prometheus's `increase` and `rate` see a counter's first increment only
    once it has a sample before it, so a worker's first succeeded (or failed) deployment would
    not show in the dashboard's outcomes otherwise."""
    meter = _runtime_of(client).metric_meter.with_additional_attributes(
        {"namespace": client.namespace, "task_queue": task_queue, "workflow_type": WORKFLOW_TYPE}
    )
    meter.create_counter(STARTED, HELP[STARTED]).add(0)
    ended = meter.create_counter(ENDED, HELP[ENDED])
    for outcome in Outcome:
        ended.add(0, {"outcome": outcome.value})


def _runtime_of(client: Client) -> Runtime:
    return client.service_client.config.runtime or Runtime.default()


@asynccontextmanager
async def worker_gauges(client: Client, settings: WorkerSettings) -> AsyncIterator[None]:
    """The gauges of the worker's task queue kept current while the block runs, if the
    worker serves metrics (`settings.metrics_address`)."""
    if settings.metrics_address is None:
        yield
        return
    outcomes_from_zero(client, settings.task_queue)
    gauges = InFlightGauges(client, settings.task_queue, settings.metrics_refresh_seconds)
    keeping = asyncio.create_task(gauges.run())
    try:
        yield
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
