"""ECS's Service Deployments API, which moto lacks: ListServiceDeployments,
DescribeServiceDeployments and DescribeServiceRevisions, answered from the scheduler's
records (``service_deployments.py``). Called by ``EcsHooks`` under the emulator lock, after
the middleware's throttling and call counting, like every ECS operation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .model import ServiceRevision
from .moto_internals import ServiceRef, find_service
from .scheduler import Scheduler
from .service_deployments import ServiceDeployment
from .task_api import Handler, MotoCall, request_cluster, requested_page
from .wsgi_util import AWS_JSON, WsgiResponse, aws_error, json_response

LIST_PAGE_SIZE = 20  # ListServiceDeployments' default page
MAX_DESCRIBED = 20  # ARNs per DescribeServiceDeployments / DescribeServiceRevisions


def _invalid(message: str) -> WsgiResponse:
    return aws_error("InvalidParameterException", message)


def _timestamp(value: Any) -> float:
    """botocore sends JSON timestamps as epoch seconds; ISO 8601 is accepted too."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class DeploymentHooks:
    """Handlers for the service deployment operations."""

    def __init__(self, scheduler: Scheduler, call: MotoCall) -> None:
        self._scheduler = scheduler
        self._call = call
        self.handlers: dict[str, Handler] = {
            "ListServiceDeployments": self._list,
            "DescribeServiceDeployments": self._describe,
            "DescribeServiceRevisions": self._describe_revisions,
        }

    def _list(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        page = requested_page(params, LIST_PAGE_SIZE)
        if isinstance(page, WsgiResponse):
            return page
        cluster = request_cluster(self._call, environ, params.get("cluster") or "default")
        if isinstance(cluster, WsgiResponse):
            return cluster
        name = str(params.get("service") or "").split("/")[-1]
        ref = find_service(cluster.account_id, cluster.region, cluster.name, name)
        if ref is None:
            return aws_error("ServiceNotFoundException", "Service not found.")
        statuses = set(params.get("status") or [])
        created = params.get("createdAt") or {}
        try:
            after = _timestamp(created["after"]) if "after" in created else None
            before = _timestamp(created["before"]) if "before" in created else None
        except ValueError:
            return _invalid("createdAt must hold timestamps.")
        found = [
            record.brief()
            for record in reversed(self._scheduler.record(ref).history)  # newest first
            if (not statuses or record.status in statuses)
            and (after is None or record.created_at.timestamp() >= after)
            and (before is None or record.created_at.timestamp() <= before)
        ]
        return json_response(200, page.of("serviceDeployments", found), AWS_JSON)

    def _describe(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        return _described(
            params, "serviceDeploymentArns", "serviceDeployments", self._find_deployment
        )

    def _describe_revisions(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        return _described(params, "serviceRevisionArns", "serviceRevisions", self._find_revision)

    def _service_of(self, arn: str) -> ServiceRef | None:
        """The service behind ``arn:aws:ecs:<region>:<account>:<kind>/<cluster>/<service>/<id>``."""
        parts = arn.split(":", 5)
        resource = parts[5].split("/") if len(parts) == 6 else []
        if len(resource) != 4:
            return None
        _, cluster, service, _ = resource
        return find_service(parts[4], parts[3], cluster, service)

    def _find_deployment(self, arn: str) -> ServiceDeployment | None:
        ref = self._service_of(arn)
        history = self._scheduler.record(ref).history if ref is not None else []
        return next((record for record in history if record.arn == arn), None)

    def _find_revision(self, arn: str) -> ServiceRevision | None:
        ref = self._service_of(arn)
        if ref is None:
            return None
        record = self._scheduler.record(ref)
        deployments = record.deployments + [r.target for r in record.history]
        revisions = [d.revision for d in deployments if d.revision is not None]
        return next((revision for revision in revisions if revision.arn == arn), None)


def _described(
    params: dict[str, Any],
    arns_field: str,
    result_field: str,
    find: Callable[[str], ServiceDeployment | ServiceRevision | None],
) -> WsgiResponse:
    """A Describe* answer as ECS gives it: what was found, and a MISSING failure for each ARN
    that was not (never an error for an unknown ARN)."""
    arns = params.get(arns_field) or []
    if not 1 <= len(arns) <= MAX_DESCRIBED:
        return _invalid(f"{arns_field} must hold 1 to {MAX_DESCRIBED} ARNs.")
    described, failures = [], []
    for arn in arns:
        found = find(str(arn))
        if found is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            described.append(found.as_api())
    return json_response(200, {result_field: described, "failures": failures}, AWS_JSON)
