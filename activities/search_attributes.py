"""Which of the deployment's custom search attributes the Temporal namespace lacks.

A workflow that upserts an unregistered search attribute has its every workflow task
rejected and never moves; asking first lets a deployment run (unlisted) on a namespace where
nobody registered them yet, with a warning that says how to register them.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import GetSearchAttributesRequest
from temporalio.service import RPCError


@activity.defn
async def missing_search_attributes(names: list[str]) -> list[str]:
    client = activity.client()
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
