"""Environment names in a request that look like secrets, and the starter's warning about them.

A value in a container's `environment` is plain text wherever the task definition goes: in
ECS (anyone allowed `ecs:DescribeTaskDefinition` reads it), in the deployment's history (unless
payloads are encrypted, docs/payload-encryption.md), in the request file. ECS has a place made
for secrets: `containerDefinitions[].secrets`, references to Secrets Manager or SSM Parameter
Store that ECS resolves when the task starts, so the value is in none of those. The names are
only a hint (`API_KEY` may hold a public id), so this warns, never refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from ecs_canary.models import DeploymentRequest
from ecs_canary.steps import RunTaskStep

# Matched against the upper-cased name, so case does not matter.
SECRET_LIKE_PATTERNS = ("*PASSWORD*", "*SECRET*", "*TOKEN*", "*_KEY")


def looks_like_secret(name: str) -> bool:
    return any(fnmatchcase(name.upper(), pattern) for pattern in SECRET_LIKE_PATTERNS)


def secret_like_environment_names(request: DeploymentRequest) -> list[str]:
    """`<where>: <NAME>` for each secret-looking environment name: the task definition's
    containers, and a run_task verification step's own task definition and overrides."""
    found = [
        f"{where}: {name}" for where, name in _environment_names(request) if looks_like_secret(name)
    ]
    return list(dict.fromkeys(found))


def secret_names_warning(request: DeploymentRequest) -> str | None:
    """The starter's warning (one paragraph) when any name looks like a secret, else None."""
    found = secret_like_environment_names(request)
    if not found:
        return None
    return (
        "warning: environment names that look like secrets: "
        + "; ".join(found)
        + ". Environment values are plain text in the task definition (ecs:DescribeTaskDefinition "
        "shows them) and in the deployment's history. Move them to the container's `secrets`, "
        'references that ECS resolves at task start: {"name": "DB_PASSWORD", "valueFrom": '
        '"arn:aws:secretsmanager:<region>:<account>:secret:<name>"} (Secrets Manager) or '
        '"arn:aws:ssm:<region>:<account>:parameter/<name>" (SSM Parameter Store); the task '
        "execution role needs to read them."
    )


def _environment_names(request: DeploymentRequest) -> Iterator[tuple[str, str]]:
    yield from _in_list(request.task_definition.get("containerDefinitions"), "task_definition")
    for step in request.verification.steps:
        if not isinstance(step, RunTaskStep):
            continue
        where = f"verification.steps ({step.name})"
        if isinstance(step.task_definition, dict):
            containers = step.task_definition.get("containerDefinitions")
            yield from _in_list(containers, f"{where}.task_definition")
        overrides = step.overrides or {}
        yield from _in_list(overrides.get("containerOverrides"), f"{where}.overrides")


def _in_list(containers: Any, where: str) -> Iterator[tuple[str, str]]:
    """Both containerDefinitions and containerOverrides: entries with a name and an
    `environment` list of {name, value}."""
    for container in containers if isinstance(containers, list) else []:
        if not isinstance(container, dict):
            continue
        label = f"{where} container {container.get('name', '?')}"
        for variable in container.get("environment") or []:
            if isinstance(variable, dict) and isinstance(variable.get("name"), str):
                yield label, variable["name"]
