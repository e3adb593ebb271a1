"""The bench's dev server reads search attributes from its cache (bench.stack.DEV_SERVER_ARGS).

`temporal server start-dev` reads them from its database on every visibility write, upsert and
describe; a dynamic config key the server does not know is ignored without a word, so this
checks on the real server that the bench's setting is the one that stops those reads, with the
dev server's default as the control."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

from temporalio import workflow
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.server_metrics import read_metrics
from bench.stack import DEV_SERVER_ARGS, dev_server
from ecs_canary import search_attributes

RUNS = 5
# Where a SQL server keeps its search attributes: the cluster's metadata. (The namespace is read
# too, but also while the server is still starting, so it is not counted here.)
CLUSTER_METADATA_READS = ("persistence_latency", "GetCurrentClusterMetadata")


@workflow.defn(sandboxed=False)
class UpsertsAStage:
    """What every deployment does to visibility: starts, upserts its stage, ends."""

    @workflow.run
    async def run(self) -> None:
        workflow.upsert_search_attributes([search_attributes.DEPLOYMENT_STAGE.value_set("probe")])


async def _cluster_metadata_reads(extra_args: Sequence[str]) -> float:
    """How many times a dev server started with `extra_args` read its cluster's metadata from
    its database while RUNS workflows ran."""
    async with (
        dev_server(*extra_args) as (env, metrics_url),
        Worker(
            env.client,
            task_queue=(task_queue := f"bench-dev-server-{uuid.uuid4()}"),
            workflows=[UpsertsAStage],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ),
    ):

        async def run(count: int) -> None:
            """`count` runs, until visibility has recorded their ends (written apart from the
            runs, by the server's visibility queue)."""
            ids = [str(uuid.uuid4()) for _ in range(count)]
            for workflow_id in ids:
                await env.client.execute_workflow(
                    UpsertsAStage.run, id=workflow_id, task_queue=task_queue
                )
            listed = " OR ".join(f'WorkflowId = "{workflow_id}"' for workflow_id in ids)
            query = f'({listed}) AND ExecutionStatus = "Completed"'
            deadline = time.monotonic() + 30
            while (await env.client.count_workflows(query)).count < count:
                assert time.monotonic() < deadline, "visibility never recorded the runs"
                await asyncio.sleep(0.05)

        await run(1)  # fills the server's caches, which a cold server reads once
        before = read_metrics(metrics_url).histogram(CLUSTER_METADATA_READS)
        await run(RUNS)
        return read_metrics(metrics_url).histogram(CLUSTER_METADATA_READS).minus(before).count


async def test_the_bench_dev_server_reads_search_attributes_from_its_cache() -> None:
    # The control: the dev server as it starts by default reads them several times a run.
    assert await _cluster_metadata_reads([]) >= RUNS
    assert await _cluster_metadata_reads(DEV_SERVER_ARGS) == 0
