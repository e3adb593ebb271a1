"""Task definition `environment` values never reach a log line.

Environment values are where people put connection strings and, against advice, passwords
(`ecs_canary.secret_names` warns about those). The project's own log calls name a task
definition's family and revision, never its content; this is the net under everything else
that may quote one: an exception's message and traceback (a validation error shows its input,
botocore's parameter validation shows the offending value), a model or dict passed as a log
field, a third-party logger. `mask_event` is a structlog processor run on every event just
before it is rendered (ecs_canary/logs.py), so it sees the final text.

Masking errs on the side of hiding: in text that mentions an environment it hides every
`value` entry (a tag's value too), and it hides every structured input that pydantic echoes in
an error, since pydantic shortens long ones by cutting out their middle, which could leave a
fragment of a value with no `'value':` before it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from pydantic import BaseModel

MASK = "***"
# ECS names: containerDefinitions[].environment and RunTask's containerOverrides[].environment.
ENVIRONMENT_KEY = "environment"

# `'value': 'x'` or `"value": "x"` (a repr or JSON), the string possibly cut short (pydantic's
# `...`, a truncated line), or a bare scalar such as `'value': 5`.
_VALUE_ENTRY = re.compile(
    r"""(?P<key>\\*(?P<q>['"])value\\*(?P=q)\s*:\s*)"""
    r"""(?:\\*(?P<s>['"])(?:\\.|(?!(?P=s))[^\\])*(?:(?P=s)|$)|[^,}\]\s]+)""",
    re.DOTALL,
)
# botocore: "Invalid type for parameter containerDefinitions[0].environment[0].value, value: 5,
# type: <class 'int'>, valid types: <class 'str'>".
_BOTOCORE_VALUE = re.compile(
    r"(?P<key>environment\[\d+\]\.value, value: ).*?(?=, type: <class |, valid |$)", re.MULTILINE
)
# pydantic's ValidationError text: `input_value={...}` or `input_value=[...]`, up to the
# `input_type=` that always follows it.
_PYDANTIC_INPUT = re.compile(r"(?P<key>input_value=)[\[{].*?(?=, input_type=|$)", re.MULTILINE)


def mask_text(text: str) -> str:
    """`text` with environment values, and pydantic's echo of structured input, hidden."""
    text = _PYDANTIC_INPUT.sub(rf"\g<key>{MASK}", text)
    if ENVIRONMENT_KEY in text.lower():
        text = _BOTOCORE_VALUE.sub(rf"\g<key>{MASK}", text)
        text = _VALUE_ENTRY.sub(rf"\g<key>{MASK}", text)
    return text


def mask_value(value: Any) -> Any:
    """A copy of a log field with environment values hidden: structure is walked (a dict
    with an `environment` list of name/value entries), text is searched (`mask_text`)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, BaseModel):
        return mask_value(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {
            key: _masked_entries(item) if key == ENVIRONMENT_KEY else mask_value(item)
            for key, item in value.items()
        }
    if isinstance(value, tuple):
        return tuple(mask_value(item) for item in value)
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    return value


def _masked_entries(entries: Any) -> Any:
    if not isinstance(entries, list):
        return mask_value(entries)
    return [
        {**entry, "value": MASK} if isinstance(entry, Mapping) and "value" in entry else entry
        for entry in entries
    ]


def mask_event(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """structlog processor: every field of the event, the message and traceback included."""
    return {key: mask_value(value) for key, value in event_dict.items()}
