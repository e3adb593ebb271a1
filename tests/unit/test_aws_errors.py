"""How AWS's answers become Temporal failures: what retries, what fails the run at once, and
with which type and message."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
from temporalio.exceptions import ApplicationError

from activities.aws import aws_error_code, aws_error_message, aws_errors


def _client_error(code: str | None, message: str | None = "it went wrong", status: int = 400):
    error: dict[str, Any] = {}
    if code is not None:
        error["Code"] = code
    if message is not None:
        error["Message"] = message
    response: dict[str, Any] = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "UpdateService")


def _raised(error: BaseException, action: str = "UpdateService") -> ApplicationError:
    with pytest.raises(ApplicationError) as caught, aws_errors(action):
        raise error
    assert caught.value.__cause__ is error  # the original stays attached for the stack trace
    return caught.value


@pytest.mark.parametrize(
    "code",
    [
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
    ],
)
def test_transient_codes_are_retried(code):
    failure = _raised(_client_error(code, "Rate exceeded"))
    assert not failure.non_retryable
    assert (failure.type, failure.message) == (code, f"UpdateService failed: {code}: Rate exceeded")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_any_5xx_is_retried_whatever_its_code(status):
    failure = _raised(_client_error("SomethingNew", "oops", status=status))
    assert not failure.non_retryable
    assert failure.type == "SomethingNew"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ServiceNotActiveException", "Service was not ACTIVE."),
        ("ClusterNotFoundException", "Cluster not found."),
        ("InvalidParameterException", "Unable to Start a service that is still Draining."),
        ("AccessDeniedException", "User is not authorized to perform ecs:UpdateService"),
    ],
)
def test_other_errors_fail_at_once_with_aws_code_and_message(code, message):
    failure = _raised(_client_error(code, message), action="CreateService")
    assert failure.non_retryable
    assert failure.type == code
    assert failure.message == f"CreateService failed: {code}: {message}"


def test_an_error_without_code_or_message_still_maps():
    error = _client_error(None, None)
    assert aws_error_code(error) == "Unknown"
    assert aws_error_message(error) == str(error)
    failure = _raised(error)
    assert failure.non_retryable and failure.type == "Unknown"


def test_an_error_without_response_metadata_is_not_taken_for_a_5xx():
    error = botocore.exceptions.ClientError(
        {"Error": {"Code": "ClientException", "Message": "no such revision"}},
        "DescribeTaskDefinition",
    )
    failure = _raised(error, action="DescribeTaskDefinition")
    assert failure.non_retryable
    assert failure.message == "DescribeTaskDefinition failed: ClientException: no such revision"


@pytest.mark.parametrize(
    ("error", "failure_type"),
    [
        (
            botocore.exceptions.ParamValidationError(report="Unknown parameter in input: x"),
            "ParamValidationError",
        ),
        (botocore.exceptions.NoCredentialsError(), "NoCredentialsError"),
        (botocore.exceptions.NoRegionError(), "NoRegionError"),
    ],
)
def test_local_configuration_errors_are_final(error, failure_type):
    """No retry can fix a bad request, missing credentials or a missing region."""
    failure = _raised(error, action="RegisterTaskDefinition")
    assert failure.non_retryable
    assert failure.type == failure_type
    assert failure.message == f"RegisterTaskDefinition failed: {error}"


def test_other_exceptions_pass_through_unchanged():
    with pytest.raises(KeyError), aws_errors("DescribeServices"):
        raise KeyError("services")


def test_no_error_no_failure():
    with aws_errors("DescribeServices"):
        value = 1
    assert value == 1
