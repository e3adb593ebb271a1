"""ECS request hooks around moto: the fixes real clients notice.

- Task operations (ListTasks, RunTask, StopTask, DescribeTasks): see ``task_api.py``.
- Service deployments and revisions (which moto lacks): see ``deployments_api.py``.
- CreateService: refuse names that are ACTIVE or still DRAINING, as ECS does, and
  ``loadBalancers`` ECS would refuse (``load_balancing.load_balancer_error``).
- UpdateService: refuse services that are not ACTIVE; decide about a new deployment.
- DeleteService: DRAINING while tasks stop, INACTIVE afterwards.
- DescribeClusters: the clusters' task counts, counted when read (``Scheduler``).
Create/Update/Delete responses are re-rendered after the scheduler saw the change, so the
caller gets the new deployment id and the full task definition ARN.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .deployments_api import DeploymentHooks
from .load_balancing import load_balancer_error
from .moto_internals import ServiceRef, find_service
from .scheduler import Scheduler
from .task_api import TaskHooks, request_cluster
from .wsgi_util import WsgiResponse, aws_error, call_app, json_response, with_body

log = logging.getLogger(__name__)

ECS_TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113."


def ecs_operation(environ: dict[str, Any]) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    return target[len(ECS_TARGET_PREFIX) :] if target.startswith(ECS_TARGET_PREFIX) else None


class EcsHooks:
    """Dispatches one ECS request; must be called under the emulator lock."""

    def __init__(self, moto_app: Callable[..., Any], scheduler: Scheduler) -> None:
        self._moto = moto_app
        self._scheduler = scheduler
        self._handlers = {
            "CreateService": self._create_service,
            "UpdateService": self._update_service,
            "DeleteService": self._delete_service,
            "DescribeClusters": self._describe_clusters,
            **TaskHooks(moto_app, scheduler, self._call).handlers,
            **DeploymentHooks(scheduler, self._call).handlers,
        }

    def handle(
        self, environ: dict[str, Any], operation: str, params: dict[str, Any]
    ) -> WsgiResponse:
        handler = self._handlers.get(operation)
        if handler is None:
            return call_app(self._moto, environ)
        try:
            return handler(environ, params)
        except Exception as exc:  # answer like AWS, never with a stack trace
            log.exception("emulator hook for %s failed", operation)
            return aws_error("ServerException", f"emulator error: {exc}", 500)

    def _describe_clusters(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        """moto's answer, with the task counts the last tick left (counted only when read)."""
        self._scheduler.count_cluster_tasks()
        return call_app(self._moto, environ)

    def _call(
        self, environ: dict[str, Any], operation: str, params: dict[str, Any]
    ) -> WsgiResponse:
        """Ask moto directly (no throttling, no call counting)."""
        sub = with_body(
            environ,
            json.dumps(params).encode(),
            HTTP_X_AMZ_TARGET=ECS_TARGET_PREFIX + operation,
        )
        return call_app(self._moto, sub)

    def _existing(self, environ: dict[str, Any], cluster: str, service: str) -> dict[str, Any]:
        """The service as moto describes it, or {} if there is none."""
        found = self._call(environ, "DescribeServices", {"cluster": cluster, "services": [service]})
        services = found.json().get("services", []) if found.code == 200 else []
        return services[0] if services else {}

    def _existing_status(self, environ: dict[str, Any], cluster: str, service: str) -> str | None:
        return self._existing(environ, cluster, service).get("status")

    def _refused_load_balancers(
        self, environ: dict[str, Any], cluster: str, params: dict[str, Any], task_definition: str
    ) -> WsgiResponse | None:
        """InvalidParameterException for load balancers ECS would refuse; None when they are
        fine or there is nothing to check (moto answers for a missing cluster or definition)."""
        if not params.get("loadBalancers"):
            return None
        found = request_cluster(self._call, environ, cluster)
        if isinstance(found, WsgiResponse):
            return None
        definition = found.task_definition(task_definition)
        error = definition and load_balancer_error(params["loadBalancers"], definition)
        return aws_error("InvalidParameterException", error) if error else None

    def _render_service(self, environ: dict[str, Any], cluster: str, arn: str) -> WsgiResponse:
        params = {"cluster": cluster, "services": [arn], "include": ["TAGS"]}
        found = self._call(environ, "DescribeServices", params)
        service = found.json()["services"][0]
        return json_response(200, {"service": service}, "application/x-amz-json-1.1")

    def _ref(self, arn: str, cluster: str) -> ServiceRef:
        _, _, _, region, account_id, resource = arn.split(":", 5)
        name = resource.split("/")[-1]
        ref = find_service(account_id, region, cluster.split("/")[-1], name)
        if ref is None:
            raise LookupError(f"service {arn} vanished")
        return ref

    def _create_service(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = params.get("cluster", "default")
        status = self._existing_status(environ, cluster, params.get("serviceName", ""))
        if status == "DRAINING":
            return aws_error(
                "InvalidParameterException", "Unable to Start a service that is still Draining."
            )
        if status == "ACTIVE":
            return aws_error("InvalidParameterException", "Creation of service was not idempotent.")
        definition = str(params.get("taskDefinition", ""))
        refused = self._refused_load_balancers(environ, cluster, params, definition)
        if refused is not None:
            return refused
        created = call_app(self._moto, environ)
        if created.code != 200:
            return created
        arn = created.json()["service"]["serviceArn"]
        self._scheduler.on_service_created(self._ref(arn, cluster), params)
        return self._render_service(environ, cluster, arn)

    def _update_service(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = params.get("cluster", "default")
        existing = self._existing(environ, cluster, params.get("service", ""))
        if existing and existing["status"] != "ACTIVE":
            return aws_error("ServiceNotActiveException", "Service was not ACTIVE.")
        definition = str(params.get("taskDefinition") or existing.get("taskDefinition", ""))
        refused = self._refused_load_balancers(environ, cluster, params, definition)
        if refused is not None:
            return refused
        updated = call_app(self._moto, environ)
        if updated.code != 200:
            return updated
        arn = updated.json()["service"]["serviceArn"]
        self._scheduler.on_service_updated(self._ref(arn, cluster), params)
        return self._render_service(environ, cluster, arn)

    def _delete_service(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = params.get("cluster", "default")
        status = self._existing_status(environ, cluster, params.get("service", ""))
        if status in ("DRAINING", "INACTIVE"):
            return aws_error("ServiceNotActiveException", "Service was not ACTIVE.")
        deleted = call_app(self._moto, environ)
        if deleted.code != 200:
            return deleted
        arn = deleted.json()["service"]["serviceArn"]
        self._scheduler.on_service_deleted(self._ref(arn, cluster))
        return self._render_service(environ, cluster, arn)
