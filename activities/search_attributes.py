"""Which of the deployment's custom search attributes the Temporal namespace lacks.

A workflow that upserts an unregistered search attribute has its every workflow task
rejected and never moves; asking first lets a deployment run (unlisted) on a namespace where
nobody registered them yet, with a warning that says how to register them.

Every run starts with this one local activity, so it also brings the run the other thing it
must learn from its worker before anything else: the platform's policy (ecs_canary.policy),
which may refuse the request before any ECS call and says whether decisions must be signed. In
the history from then on, a replay never asks again, whatever the worker's environment says by
then.
"""

from __future__ import annotations

import time

from temporalio import activity
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import GetSearchAttributesRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from ecs_canary.models import StartChecks
from ecs_canary.policy import PolicyError, read_policy
from ecs_canary.registered_search_attributes import RegisteredSearchAttributes


@activity.defn
async def missing_search_attributes(names: list[str]) -> StartChecks:
    """The name stays: it is the activity type of the first command of every recorded run."""
    return start_checks(await _missing(names))


def start_checks(missing_search_attributes: list[str]) -> StartChecks:
    """The answer, with the policy as the worker reads it now. A policy file broken since the
    worker started fails the run (fail closed), saying what is wrong."""
    try:
        policy = read_policy()
    except PolicyError as err:
        raise ApplicationError(str(err), type="PolicyUnreadable", non_retryable=True) from err
    return StartChecks(
        missing_search_attributes=missing_search_attributes,
        signed_decisions_required=policy.require_signed_decisions,
        policy=policy,
    )


# What this worker last found listed, per server and namespace.
REGISTERED = RegisteredSearchAttributes()


async def _missing(names: list[str]) -> list[str]:
    """The names the namespace lacks: none asked, none missing; all of them registered a moment
    ago, still registered (ecs_canary.registered_search_attributes); otherwise listed now."""
    if not names:
        return []
    client = activity.client()
    listing = REGISTERED.listing(client.service_client.config.target_host, client.namespace, names)
    if REGISTERED.all_registered(listing, time.monotonic()):
        return []
    missing = await _listed_missing(client, names)
    REGISTERED.listed(listing, missing, time.monotonic())
    return missing


async def _listed_missing(client: Client, names: list[str]) -> list[str]:
    try:
        # Custom search attributes are registered per namespace.
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(listed.custom_attributes)
    except RPCError:
        try:  # servers that only answer the cluster-wide listing
            known = set(
                (
                    await client.workflow_service.get_search_attributes(
                        GetSearchAttributesRequest()
                    )
                ).keys
            )
        except RPCError as err:
            activity.logger.warning(f"Cannot list the namespace's search attributes: {err}")
            return names
    return [name for name in names if name not in known]
