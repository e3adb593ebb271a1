"""Reading a run on the time-skipping server: its status, waiting for a stage, how it failed.
Shared by the workflow-layer tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from ecs_canary.models import DeploymentResult, DeploymentStatus


async def status_of(handle: WorkflowHandle[Any, DeploymentResult]) -> DeploymentStatus:
    return await handle.query("status", result_type=DeploymentStatus)


async def details_of(handle: WorkflowHandle[Any, DeploymentResult]) -> str:
    """The run's current details, as the Web UI shows them."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def until(handle: WorkflowHandle[Any, DeploymentResult], stage: str, **fields: Any) -> None:
    """Wait (bounded) for the run to reach `stage` with the given status fields."""
    async with asyncio.timeout(30):
        while True:
            current = await status_of(handle)
            if current.stage.value == stage and all(
                getattr(current, k) == v for k, v in fields.items()
            ):
                return
            await asyncio.sleep(0.05)


async def failure_of(handle: WorkflowHandle[Any, DeploymentResult]) -> BaseException:
    """What the run failed with (it must fail)."""
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert failed.value.cause is not None
    return failed.value.cause


def result_of(error: BaseException) -> DeploymentResult:
    """The DeploymentResult a failed run carries in its error's details."""
    assert isinstance(error, ApplicationError)
    return DeploymentResult.model_validate(error.details[0])
