"""The runs one test starts on its own task queue, and what becomes of them when it ends:
still open, terminated (so the next test may use the same workflow ids); closed, replayed on
today's workflow code, so every run an end-to-end test finishes is also a replay test."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from ecs_canary.models import DeploymentRequest, DeploymentResult
from ecs_canary.names import TRAIN_WORKFLOW_TYPE, train_workflow_id_for
from ecs_canary.train import TrainResult
from tests.helpers.replay import replay_histories
from tests.helpers.temporal import start
from tests.helpers.waiting import wait_until

# How long visibility (list queries) may lag behind the runs' own state.
VISIBILITY_TIMEOUT = 30.0


class Runs:
    """Starts and tracks one test's runs; `finish` settles them (the `runs` fixture's end)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self.client = client
        self.task_queue = task_queue
        self.run_ids: dict[str, str] = {}  # run id -> workflow id

    async def start(
        self,
        request: dict[str, Any] | DeploymentRequest,
        workflow_id: str | None = None,
        task_timeout: timedelta | None = None,
    ) -> WorkflowHandle:
        """Start a deployment on this test's task queue (`tests.helpers.temporal.start`)."""
        handle = await start(self.client, self.task_queue, request, workflow_id, task_timeout)
        assert handle.result_run_id is not None
        self.run_ids[handle.result_run_id] = handle.id
        return handle

    async def start_train(self, body: dict[str, Any]) -> WorkflowHandle[Any, TrainResult]:
        """Start a release train (its request `body`) on this test's task queue, under its
        default workflow id."""
        handle = await self.client.start_workflow(
            TRAIN_WORKFLOW_TYPE,
            body,
            id=train_workflow_id_for(body["name"]),
            task_queue=self.task_queue,
            result_type=TrainResult,
        )
        await self.track(handle.id)
        return handle

    async def track(self, workflow_id: str) -> WorkflowHandle:
        """The run just started under `workflow_id` by a command line (the temporal CLI, the
        starter): a handle on that run, which this test now answers for."""
        latest = self.client.get_workflow_handle(workflow_id)
        run_id = (await latest.describe()).run_id
        self.run_ids[run_id] = workflow_id
        return self.client.get_workflow_handle(
            workflow_id, run_id=run_id, result_type=DeploymentResult
        )

    async def finish(self) -> int:
        """Terminate the runs still open, wait until visibility lists every run on the queue
        as closed, and replay them all; returns how many were replayed."""
        for run_id, workflow_id in self.run_ids.items():
            await self._terminate(workflow_id, run_id)
        await wait_until(self._all_closed_and_listed, timeout=VISIBILITY_TIMEOUT, every=0.1)
        closed = self.client.list_workflows(self._query("ExecutionStatus != 'Running'"))
        converter = self.client.data_converter  # encrypted histories need the client's codec
        replayed = await replay_histories(closed.map_histories(), data_converter=converter)
        print(f"\n{self.task_queue}: replayed {replayed} finished run(s)")
        return replayed

    def _query(self, condition: str) -> str:
        return f"TaskQueue = '{self.task_queue}' AND {condition}"

    async def _all_closed_and_listed(self) -> bool:
        """Visibility lags a run's own state a little: settled once it lists no run on the
        queue as running (any run started elsewhere and left open is terminated here) and
        lists every run this test started as closed."""
        listed_open = self.client.list_workflows(self._query("ExecutionStatus = 'Running'"))
        still_open = [(w.id, w.run_id) async for w in listed_open]
        for workflow_id, run_id in still_open:
            await self._terminate(workflow_id, run_id)
        closed = self.client.list_workflows(self._query("ExecutionStatus != 'Running'"))
        listed_closed = {w.run_id async for w in closed}
        return not still_open and set(self.run_ids) <= listed_closed

    async def _terminate(self, workflow_id: str, run_id: str) -> None:
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        try:
            await handle.terminate("test finished")
        except RPCError as err:  # it closed in between: "workflow execution already completed"
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
