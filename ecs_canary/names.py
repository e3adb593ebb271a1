"""Names other systems see and rely on: one place, so that the worker, the starter, the
workflow and the activities can never disagree about them (they are a public contract)."""

from __future__ import annotations

TASK_QUEUE = "ecs-deployments"
WORKFLOW_TYPE = "EcsCanaryDeployment"
# A release train: many deployments in waves (see ecs_canary.train).
TRAIN_WORKFLOW_TYPE = "EcsReleaseTrain"
# The Update a worker sends, when it starts, to each open run of its task queue so that it holds
# the run cached (ecs_canary.warm_up); every run refuses it, with this error type.
WARM_UP_UPDATE = "warm_up"
WARM_UP_REFUSED = "WarmUpOnly"
# Tags on what a deployment creates in ECS, so that a later run recognises its own work.
RUN_ID_TAG = "ecs-canary:run-id"
WORKFLOW_ID_TAG = "ecs-canary:workflow-id"


def workflow_id_for(cluster: str, service_name: str) -> str:
    """One deployment per service: the id is derived from where the service lives."""
    return f"ecs-canary/{cluster}/{service_name}"


def train_workflow_id_for(name: str) -> str:
    """One run per train name: a train with the same name cannot run twice at once."""
    return f"ecs-canary-train/{name}"
