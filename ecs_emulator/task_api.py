"""ECS task requests: the emulator answers them itself where moto differs from ECS.

- RunTask: moto needs container instances for EC2 tasks and crashes on awsvpc ones; here
  tasks start on any launch type and move through the lifecycle (``standalone.py``).
- StopTask: ECS stops over time (DEACTIVATING, STOPPING, STOPPED) with ``stopCode``
  UserInitiated; moto flips to STOPPED at once and answers 500 for an unknown task.
- ListTasks: ECS's filters (desiredStatus defaults to RUNNING; serviceName, family,
  startedBy, launchType) on exactly the given cluster, paginated at 100 with nextToken.
- DescribeTasks: only tasks of the given cluster, and ``failures`` (MISSING) for the rest.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .moto_internals import ClusterRef, find_cluster
from .scheduler import Scheduler
from .standalone import RunRequest
from .wsgi_util import AWS_JSON, WsgiResponse, aws_error, call_app, json_response

PAGE_SIZE = 100
MAX_RUN_COUNT = 10
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")
DESIRED_STATUSES = ("RUNNING", "PENDING", "STOPPED")

MotoCall = Callable[[dict[str, Any], str, dict[str, Any]], WsgiResponse]
Handler = Callable[[dict[str, Any], dict[str, Any]], WsgiResponse]


def _invalid(message: str) -> WsgiResponse:
    return aws_error("InvalidParameterException", message)


@dataclass(frozen=True)
class Page:
    """The page a List call asks for: where it starts (``nextToken``) and its size."""

    offset: int
    size: int

    def of(self, key: str, items: list[Any]) -> dict[str, Any]:
        """This page of ``items`` under ``key``, with ``nextToken`` if more follow."""
        end = self.offset + self.size
        result: dict[str, Any] = {key: items[self.offset : end]}
        if end < len(items):
            result["nextToken"] = base64.urlsafe_b64encode(str(end).encode()).decode()
        return result


def requested_page(params: dict[str, Any], default_size: int) -> Page | WsgiResponse:
    """The page asked for by ``nextToken`` (ECS's tokens are opaque; these are offsets) and
    ``maxResults`` (1 to 100), or the error ECS gives for either."""
    page_size = params.get("maxResults", default_size)
    if not isinstance(page_size, int) or not 1 <= page_size <= PAGE_SIZE:
        return _invalid("maxResults must be between 1 and 100.")
    token = params.get("nextToken")
    try:
        offset = int(base64.urlsafe_b64decode(str(token).encode()).decode()) if token else 0
    except (ValueError, binascii.Error):
        return _invalid("Invalid nextToken.")
    return Page(offset, page_size)


def request_cluster(
    call: MotoCall, environ: dict[str, Any], reference: str
) -> ClusterRef | WsgiResponse:
    """The moto cluster behind a name or ARN, in the account and region of the request (moto
    works those out from the request's signature), or ECS's ClusterNotFoundException."""
    found = call(environ, "DescribeClusters", {"clusters": [reference]})
    if found.code != 200:
        return found
    clusters = found.json().get("clusters", [])
    if clusters:
        _, _, _, region, account_id, resource = clusters[0]["clusterArn"].split(":", 5)
        cluster = find_cluster(account_id, region, resource.split("/")[-1])
        if cluster is not None:
            return cluster
    return aws_error("ClusterNotFoundException", "Cluster not found.")


class TaskHooks:
    """Handlers for the task operations; called by ``EcsHooks`` under the emulator lock.

    ``call`` asks moto directly (no throttling, no counting) for the parts moto gets right:
    resolving a cluster reference and rendering tasks as ECS JSON.
    """

    def __init__(self, moto_app: Callable[..., Any], scheduler: Scheduler, call: MotoCall):
        self._moto = moto_app
        self._scheduler = scheduler
        self._call = call
        self.handlers: dict[str, Handler] = {
            "ListTasks": self._list_tasks,
            "RunTask": self._run_task,
            "StopTask": self._stop_task,
            "DescribeTasks": self._describe_tasks,
        }

    def _render(self, environ: dict[str, Any], cluster: ClusterRef, arns: list[str]) -> list[Any]:
        params = {"cluster": cluster.name, "tasks": arns, "include": ["TAGS"]}
        return self._call(environ, "DescribeTasks", params).json().get("tasks", [])

    def _list_tasks(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        page = requested_page(params, PAGE_SIZE)
        if isinstance(page, WsgiResponse):
            return page
        desired = params.get("desiredStatus") or "RUNNING"  # ECS's default filter
        if desired not in DESIRED_STATUSES:
            return _invalid(f"desiredStatus must be one of {', '.join(DESIRED_STATUSES)}.")
        cluster = request_cluster(self._call, environ, params.get("cluster") or "default")
        if isinstance(cluster, WsgiResponse):
            return cluster
        service = (params.get("serviceName") or "").split("/")[-1]
        instance = (params.get("containerInstance") or "").split("/")[-1]
        arns = [
            task.arn
            for task in cluster.tasks()
            if task.desired_status == desired
            and (not service or self._scheduler.service_of_task(task.arn) == service)
            and (not params.get("family") or task.family == params["family"])
            and (not params.get("startedBy") or task.started_by == params["startedBy"])
            and (not params.get("launchType") or task.launch_type == params["launchType"])
            and (not instance or (task.container_instance_arn or "").endswith("/" + instance))
        ]
        return json_response(200, page.of("taskArns", arns), AWS_JSON)

    def _run_task(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = request_cluster(self._call, environ, params.get("cluster") or "default")
        if isinstance(cluster, WsgiResponse):
            return cluster
        count = params.get("count", 1)
        if not isinstance(count, int) or not 1 <= count <= MAX_RUN_COUNT:
            return _invalid(f"count must be between 1 and {MAX_RUN_COUNT}.")
        launch_type = params.get("launchType")
        strategy = params.get("capacityProviderStrategy") or []
        if launch_type and launch_type not in LAUNCH_TYPES:
            return _invalid("launch type should be one of [EC2,FARGATE,EXTERNAL]")
        if launch_type and strategy:
            return _invalid(
                "Specify either Launch Type or Capacity Provider Strategy, but not both."
            )
        if not launch_type and not strategy:
            strategy = cluster.default_capacity_provider_strategy
            # Without either, ECS places the task on the cluster's EC2 instances.
            launch_type = None if strategy else "EC2"
        definition = cluster.task_definition(str(params.get("taskDefinition", "")))
        if definition is None:
            return _invalid("TaskDefinition not found.")
        network = params.get("networkConfiguration")
        if definition.network_mode == "awsvpc":
            if not network:
                return _invalid(
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified."
                )
            if not (network.get("awsvpcConfiguration") or {}).get("subnets"):
                return _invalid("subnets can not be empty.")
        elif network:
            return _invalid(
                "Network Configuration is not valid for the given networkMode of this task "
                "definition."
            )
        request = RunRequest(
            count=count,
            group=params.get("group") or f"family:{definition.family}",
            started_by=params.get("startedBy"),
            launch_type=launch_type or "",
            platform_version=params.get("platformVersion"),
            network=network,
            overrides=params.get("overrides"),
            tags=params.get("tags"),
            capacity_provider_name=strategy[0].get("capacityProvider") if strategy else None,
        )
        arns = self._scheduler.standalone.run(cluster, definition, request, time.monotonic())
        tasks = self._render(environ, cluster, arns)
        return json_response(200, {"tasks": tasks, "failures": []}, AWS_JSON)

    def _stop_task(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        cluster = request_cluster(self._call, environ, params.get("cluster") or "default")
        if isinstance(cluster, WsgiResponse):
            return cluster
        task = cluster.find_task(str(params.get("task", "")))
        if task is None:
            return _invalid("The referenced task was not found.")
        # Stopping a stopped task changes nothing; tasks the emulator does not run (StartTask)
        # are left to moto.
        if task.desired_status != "STOPPED" and not self._scheduler.stop_task(
            task.arn, params.get("reason")
        ):
            return call_app(self._moto, environ)
        (described,) = self._render(environ, cluster, [task.arn])
        return json_response(200, {"task": described}, AWS_JSON)

    def _describe_tasks(self, environ: dict[str, Any], params: dict[str, Any]) -> WsgiResponse:
        described = call_app(self._moto, environ)
        if described.code != 200:
            return described
        body = described.json()
        # moto looks in every cluster and matches ids as substrings; ECS does neither.
        cluster_name = str(params.get("cluster") or "default").split("/")[-1]
        wanted = [str(reference) for reference in params.get("tasks") or []]
        tasks, found = [], set()
        for task in body.get("tasks", []):
            arn = task["taskArn"]
            matches = {ref for ref in wanted if ref in (arn, arn.split("/")[-1])}
            if task["clusterArn"].split("/")[-1] == cluster_name and matches:
                tasks.append(task)
                found |= matches
        failures = [{"arn": ref, "reason": "MISSING"} for ref in wanted if ref not in found]
        return json_response(200, {**body, "tasks": tasks, "failures": failures}, AWS_JSON)
