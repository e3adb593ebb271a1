"""Which refusal of an Update is sent again (ecs_canary.unprocessed_update): only the server's
own "wasn't processed by worker", never a refusal by the run, even one that took its type name;
the failures are decoded by the SDK's own failure converter, as the client decodes them."""

from __future__ import annotations

from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.client import WorkflowUpdateFailedError
from temporalio.converter import DataConverter

from ecs_canary.unprocessed_update import UNPROCESSED_UPDATE, was_unprocessed

SERVER_MESSAGE = (
    "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow "
    "Update is not supported by the worker."
)


def _update_failed(source: str, failure_type: str) -> WorkflowUpdateFailedError:
    failure = Failure(
        message=SERVER_MESSAGE,
        source=source,
        application_failure_info=ApplicationFailureInfo(type=failure_type, non_retryable=True),
    )
    converter = DataConverter.default
    cause = converter.failure_converter.from_failure(failure, converter.payload_converter)
    return WorkflowUpdateFailedError(cause)


def test_the_servers_unprocessed_update_is_sent_again():
    assert was_unprocessed(_update_failed("Server", UNPROCESSED_UPDATE))


def test_the_runs_refusals_are_not():
    assert not was_unprocessed(_update_failed("PythonSDK", "GateRefusal"))
    assert not was_unprocessed(_update_failed("PythonSDK", UNPROCESSED_UPDATE))
    assert not was_unprocessed(_update_failed("Server", "AcceptedUpdateCompletedWorkflow"))
