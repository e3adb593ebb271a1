"""The project's data converter: a gate refusal reaches people without a stack trace."""

from __future__ import annotations

import temporalio.api.failure.v1

from ecs_canary.gate import GateRefusal
from ecs_canary.temporal import DATA_CONVERTER


def _failure_of(error: BaseException) -> temporalio.api.failure.v1.Failure:
    try:
        raise error  # a raised exception carries the traceback a worker would send
    except BaseException as raised:
        failure = temporalio.api.failure.v1.Failure()
        DATA_CONVERTER.failure_converter.to_failure(
            raised, DATA_CONVERTER.payload_converter, failure
        )
        return failure


def test_a_gate_refusal_carries_its_reason_and_no_stack_trace() -> None:
    failure = _failure_of(GateRefusal("'mallory' may not decide this deployment"))
    assert failure.message == "'mallory' may not decide this deployment"
    assert failure.application_failure_info.type == "GateRefusal"
    assert failure.stack_trace == ""


def test_other_errors_keep_their_stack_trace() -> None:
    failure = _failure_of(RuntimeError("boom"))
    assert failure.message == "boom"
    assert "test_failure_converter.py" in failure.stack_trace
