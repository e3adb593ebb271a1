"""Arguments the workflow decodes itself, so that no input can fail its first task.

The SDK decodes a typed argument before the workflow runs; JSON it cannot read (nested past
its parser's 200 levels, a lone surrogate such as "\\ud800") then fails the workflow task,
which the server retries forever, and a signal carrying it is dropped unrecorded. Taking a
`RawValue` and decoding it here turns such input into an ordinary refusal: the run fails at
once with InvalidRequest, and a decision is refused and recorded. The same holds for a payload
the worker's codec could not decrypt (ecs_canary.codec.WorkerEncryptionCodec): it arrives as
an UNDECODABLE payload that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from ecs_canary.codec import ENCODING_KEY, UNDECODABLE

# The default of an argument the client did not send (`approve` with no input). The SDK passes
# a RawValue only to a parameter annotated exactly `RawValue`, so `None` cannot be the default.
NO_ARGUMENT = RawValue(Payload())
_MAX_WHY = 200


@dataclass(frozen=True)
class Unreadable:
    """An argument the payload converter could not decode, and why (no input is quoted)."""

    why: str


def read_argument(raw: RawValue) -> Any:
    """The argument as the payload converter decodes it, None when none was sent, or
    Unreadable."""
    if raw is NO_ARGUMENT:
        return None
    if raw.payload.metadata.get(ENCODING_KEY) == UNDECODABLE:
        return Unreadable(_cut(raw.payload.data.decode(errors="replace")))
    try:
        return workflow.payload_converter().from_payload(raw.payload)
    except ValidationError as err:
        return Unreadable(_cut(str(err.errors(include_input=False)[0]["msg"])))
    except Exception as err:  # any converter's failure is the input's fault, never the run's
        return Unreadable(_cut(f"{type(err).__name__}: {err}"))


def _cut(why: str) -> str:
    first_line = why.splitlines()[0] if why else "unreadable"
    return first_line if len(first_line) <= _MAX_WHY else first_line[: _MAX_WHY - 3] + "..."


Carried = TypeVar("Carried", bound=BaseModel)


def continuation(
    payload: Any, model: type[Carried], run_before: Callable[[Carried], str | None]
) -> Carried | None:
    """`payload` as the `model` an earlier run carried over, when this run is its
    continuation; None when the input is a client's (a first run, or a retry or a cron
    schedule's next run, which Temporal also starts naming the run before, with the client's
    input again). It is a continuation only if it names that very run (`run_before`): a client
    cannot know the id of a run that does not exist yet, so an input shaped as a continuation
    there is a forgery, left to be refused as a request."""
    continued_run_id = workflow.info().continued_run_id
    if continued_run_id is None:
        return None
    try:
        carried = model.model_validate(payload)
    except ValidationError:  # the client's request again
        return None
    return carried if run_before(carried) == continued_run_id else None
