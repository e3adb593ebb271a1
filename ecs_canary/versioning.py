"""Worker Versioning: which build of the worker this is, and what that means for its runs.

A deployment's gate can stay open for days. A worker upgraded meanwhile whose workflow code
issues different commands would fail every open run on replay (and the project uses no
`workflow.patched`). With ECS_CANARY_BUILD_ID set, the worker is that version of the Worker
Deployment ECS_CANARY_DEPLOYMENT_NAME, and every run it starts (a deployment, a release train
and the train's deployments) is PINNED: it finishes on the build it started on, while new runs
go to the deployment's current version (`temporal worker deployment set-current-version`; the
README's "Upgrading the worker"). Without a build id the worker runs unversioned.
"""

from __future__ import annotations

import os

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

BUILD_ID_VARIABLE = "ECS_CANARY_BUILD_ID"
DEPLOYMENT_NAME_VARIABLE = "ECS_CANARY_DEPLOYMENT_NAME"
DEFAULT_DEPLOYMENT_NAME = "ecs-canary"

# The server's limit on a build id (dynamic config `limit.workerBuildIdSize`), also applied to
# the deployment name. The server accepts a worker that breaks its rules and then silently
# refuses its polls: the worker would run and never receive a task, so they are checked here.
MAX_BYTES = 255
# The server keeps names beginning with this for itself (e.g. `__unversioned__`).
RESERVED_PREFIX = "__"
# Joins the deployment name and the build id in a version's canonical name ("ecs-canary.7").
VERSION_DELIMITER = "."


def worker_version_from_env() -> WorkerDeploymentVersion | None:
    """The version this worker runs as, or None (unversioned) when ECS_CANARY_BUILD_ID is
    unset or empty. A value the server would refuse stops the worker with the reason."""
    name = os.environ.get(DEPLOYMENT_NAME_VARIABLE) or DEFAULT_DEPLOYMENT_NAME
    _check(DEPLOYMENT_NAME_VARIABLE, name)
    if VERSION_DELIMITER in name:
        raise SystemExit(f"{DEPLOYMENT_NAME_VARIABLE} must not contain '.', got {name!r}")
    build_id = os.environ.get(BUILD_ID_VARIABLE)
    if not build_id:
        return None
    _check(BUILD_ID_VARIABLE, build_id)
    return WorkerDeploymentVersion(deployment_name=name, build_id=build_id)


def _check(variable: str, value: str) -> None:
    size = len(value.encode())
    if size > MAX_BYTES:
        raise SystemExit(f"{variable} must be at most {MAX_BYTES} bytes long, got {size} bytes")
    if value.startswith(RESERVED_PREFIX):
        raise SystemExit(f"{variable} must not start with '__' (kept for Temporal), got {value!r}")
    if any(char.isspace() for char in value):
        raise SystemExit(f"{variable} must not contain whitespace, got {value!r}")


def deployment_config(version: WorkerDeploymentVersion | None) -> WorkerDeploymentConfig | None:
    """The worker's versioning: as `version`, every workflow PINNED by default; None:
    unversioned."""
    if version is None:
        return None
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )
