"""DescribeServices answers recorded from the project's ECS emulator (`recorded/*.json`).

Each file holds what ECS answered (`response`, without ResponseMetadata), the service it was
asked about and the task definition the run was deploying. They were recorded once, with a
throwaway script driving `ecs_emulator.start_emulator` through boto3: CreateService and
UpdateService of FARGATE services in the seeded VPC, image tags `nopull` and `crash`, and
`deploymentCircuitBreaker` with and without rollback (see docs/emulator.md). Record again the
same way if the emulator's answers change shape.

botocore gives timestamps as datetimes; the files keep them as ISO strings, and `load` turns
them back, so the code under test sees what it sees in production.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).resolve().parent / "recorded"
_TIMESTAMPS = ("createdAt", "updatedAt")


@dataclass(frozen=True)
class Recording:
    about: str
    service_name: str
    run_task_definition_arn: str
    response: dict[str, Any]

    @property
    def service(self) -> dict[str, Any] | None:
        """The described service, None where ECS has none (as the activities see it)."""
        services = self.response["services"]
        return services[0] if services else None


def names() -> list[str]:
    return sorted(path.stem for path in RECORDED.glob("*.json"))


def load(name: str) -> Recording:
    """A fresh copy each time: a test may edit it."""
    return copy.deepcopy(_load(name))


@cache
def _load(name: str) -> Recording:
    body = json.loads((RECORDED / f"{name}.json").read_text())
    return Recording(
        about=body["about"],
        service_name=body["service_name"],
        run_task_definition_arn=body["run_task_definition_arn"],
        response=_with_datetimes(body["response"]),
    )


def _with_datetimes(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: datetime.fromisoformat(item)
            if key in _TIMESTAMPS and isinstance(item, str)
            else _with_datetimes(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_with_datetimes(item) for item in value]
    return value
