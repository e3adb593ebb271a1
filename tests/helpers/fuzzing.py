"""What the fuzz tests share: deeply nested values, and the property every generated request
or decision must have (valid, or refused with a clear ValidationError, and quickly)."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import settings
from pydantic import BaseModel, ValidationError

# What a validation may take at most: the SDK's deadlock detector fails a workflow task whose
# code runs for 2 s without yielding, and that task would be retried forever. The bound is
# loose (a loaded CI machine), but the quadratic checks this guards against took 11-31 s.
VALIDATION_SECONDS = 5.0

# The Hypothesis profile `make test-fast` loads (`--hypothesis-profile=fast`, registered in
# tests/conftest.py): the edit-test loop draws a fifth of the examples, `make test` and CI all.
FAST_PROFILE = "fast"


def examples(full: int) -> int:
    """How many examples a property test draws: `full`, or a fifth of it in the fast loop.
    The draws are derandomized, so the fast loop's examples are the first of the full run's."""
    return full // 5 if settings.get_current_profile_name() == FAST_PROFILE else full


def nested(depth: int, kind: str = "list") -> Any:
    """`depth` lists (or dicts) inside each other, built without recursion."""
    value: Any = "bottom"
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def valid_or_clearly_refused(model: type[BaseModel], value: Any) -> BaseModel | None:
    """`value` as the model, or None once refused with a clear ValidationError: it says how
    many errors, and each one where (its path) and why (a message). Any other exception fails
    the caller's test, and so does a validation that would stall a workflow task."""
    started = time.monotonic()
    try:
        validated = model.model_validate(value)
    except ValidationError as err:
        # Only the validation is timed: the workflow's refusal text is cut short separately.
        assert time.monotonic() - started < VALIDATION_SECONDS
        text = str(err)
        count = err.error_count()
        assert count >= 1
        assert text.startswith(f"{count} validation error{'s' if count > 1 else ''} for")
        for error in err.errors(include_url=False):
            assert isinstance(error["loc"], tuple)
            assert isinstance(error["msg"], str) and error["msg"].strip(), error
        return None
    assert time.monotonic() - started < VALIDATION_SECONDS
    return validated
