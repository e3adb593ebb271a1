"""The paused runs `pending` lists besides the gates: deployments at any stage, and release
trains. No search attribute says a run is paused, so each running one outside the gate's list
is asked (its `status` query)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError

from cli.format import paused_text
from cli.runs import query_status, run_handle
from ecs_canary.models import DeploymentStatus, Stage
from ecs_canary.names import TRAIN_WORKFLOW_TYPE, WORKFLOW_TYPE
from ecs_canary.train import TrainStatus


def paused_query(service: str | None) -> str:
    """Running deployments (of `service`, already checked) not at the verification gate, and
    (without a service) running trains."""
    query = (
        f"ExecutionStatus='Running' AND WorkflowType='{WORKFLOW_TYPE}' "
        f"AND DeploymentStage!='{Stage.VERIFICATION.value}'"
    )
    if service:
        return f"{query} AND EcsService='{service}'"
    return f"({query}) OR (ExecutionStatus='Running' AND WorkflowType='{TRAIN_WORKFLOW_TYPE}')"


async def paused_lines(client: Client, service: str | None) -> list[str]:
    """A few lines per paused run: who paused it and the command that resumes it."""
    lines = []
    async for execution in client.list_workflows(paused_query(service)):
        train = execution.workflow_type == TRAIN_WORKFLOW_TYPE
        handle = run_handle(client, execution.id, execution.run_id)
        try:
            current: DeploymentStatus | TrainStatus = (
                await handle.query("status", result_type=TrainStatus)
                if train
                else await query_status(handle)
            )
        except RPCError:
            continue  # no worker answers now; `status` says more
        if current.paused is None:
            continue
        kind, this_run = ("train " if train else ""), f"--run-id {execution.run_id}"
        lines += [
            f"{execution.id}  ({'release train' if train else 'deployment'}, {this_run})",
            f"  paused:    {paused_text(current.paused)}",
            f"  resume:    python starter.py {kind}resume {execution.id} {this_run}",
        ]
    return lines
