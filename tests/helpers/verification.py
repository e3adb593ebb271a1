"""What verification steps check, for tests that run them end to end: a local HTTP server to
request, CloudWatch datapoints for a service and alarms that guard it, the example check
workflow on a worker of its own, and the standalone (RunTask) tasks a step left in the
cluster."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Worker

from tests.helpers.ecs import CLUSTER
from tests.helpers.local_http import QuietHandler, serving
from tests.helpers.processes import ROOT

CHECK_EXAMPLE = ROOT / "examples" / "check_workflow"
HEALTHY_BODY = b"ok healthy"


@dataclass
class HttpTarget:
    """A local server: `/status/<code>` answers with that status, any other path 200 with
    `HEALTHY_BODY`. `paths` lists every path requested, in order."""

    base: str
    paths: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@contextmanager
def http_target() -> Iterator[HttpTarget]:
    target = HttpTarget(base="")

    class Answer(QuietHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            target.paths.append(self.path)
            code = int(self.path.split("/")[-1]) if self.path.startswith("/status/") else 200
            self.answer(code, HEALTHY_BODY if code == 200 else b"unavailable")

    with serving(Answer) as base:
        target.base = base
        yield target


def put_metric(cloudwatch: Any, namespace: str, metric: str, service: str, *values: float) -> None:
    """Datapoints of `metric` with dimension ServiceName=`service`, a few seconds back (moto
    cuts GetMetricData's EndTime to whole seconds)."""
    when = datetime.now(UTC) - timedelta(seconds=5)
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "ServiceName", "Value": service}],
                "Timestamp": when,
                "Value": value,
            }
            for value in values
        ],
    )


def guarding_alarm(cloudwatch: Any, name: str) -> None:
    """A CloudWatch alarm `name` (in INSUFFICIENT_DATA until a test sets its state) on the
    load balancer's 5xx count, as the alarms that guard a deployment are."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
    )


def check_example() -> tuple[type, Any]:
    """`examples/check_workflow`'s workflow class and activity, imported as its worker does
    (with its folder on sys.path, where the workflow sandbox imports `check` from again)."""
    if str(CHECK_EXAMPLE) not in sys.path:
        sys.path.append(str(CHECK_EXAMPLE))
    from check import CanarySmokeCheck  # type: ignore[import-not-found]
    from probe import http_probe  # type: ignore[import-not-found]

    return CanarySmokeCheck, http_probe


@asynccontextmanager
async def check_worker(client: Client) -> AsyncIterator[str]:
    """The example check workflow on a worker and task queue of its own (not the deployment's),
    with Temporal's default data converter as a user's worker has; yields the task queue."""
    workflow_class, probe = check_example()
    config = client.config()
    config["data_converter"] = DataConverter.default
    user_client = Client(**config)
    task_queue = f"qa-checks-{uuid.uuid4().hex[:8]}"
    async with Worker(
        user_client, task_queue=task_queue, workflows=[workflow_class], activities=[probe]
    ):
        yield task_queue


def standalone_tasks(ecs: Any, *desired_statuses: str) -> list[dict[str, Any]]:
    """The cluster's tasks that no service owns (RunTask's), in the given desired statuses
    (RUNNING when none is given). The emulator keeps stopped tasks until its reset, which
    each test begins with, so RUNNING and STOPPED together are every task a test started."""
    arns = [
        arn
        for desired in desired_statuses or ("RUNNING",)
        for arn in ecs.list_tasks(cluster=CLUSTER, desiredStatus=desired)["taskArns"]
    ]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return [task for task in tasks if not task.get("group", "").startswith("service:")]
