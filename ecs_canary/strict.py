"""The base of every request, status and activity model, and the bounds a request stays in.

Each bound keeps a request that passes validation usable by the workflow: beyond it, the
workflow's own arithmetic or Temporal's payload encoding would fail where a validation error
belongs, and an exception in workflow code fails its task, which Temporal retries forever.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict

# The longest wait, timeout or window a request may ask for: a year. The workflow turns each
# into a timedelta, a timer or an activity timeout; 1e300 seconds overflows all of them.
MAX_SECONDS = 366 * 24 * 3600
# How deep lists and objects may nest in a free-form part of a request. The ECS shapes nest at
# most 8 levels; botocore checks and quotes a value recursively, and Temporal's JSON decoding
# stops at 200 levels, so much deeper input would fail with RecursionError or in the SDK.
MAX_NESTING = 32


class StrictModel(BaseModel):
    """Rejects unknown fields, so a typo in a request fails loudly instead of being ignored."""

    model_config = ConfigDict(extra="forbid")


def nesting_exceeds(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether lists and dicts in `value` nest more than `limit` levels deep. Iterative, so
    that input of any depth is measured without recursion."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list | tuple):
            if depth == limit:
                return True
            stack.extend((child, depth + 1) for child in node)
    return False


def check_nesting(value: Any) -> Any:
    """`value` itself, or a ValueError for one nested beyond MAX_NESTING (for validators)."""
    if nesting_exceeds(value):
        raise ValueError(f"lists and objects nest more than {MAX_NESTING} levels deep")
    return value
