"""Simulated traffic: each second, `traffic_rps` requests to every entry point, and their metrics.

No HTTP request is made: each task's answers are drawn from ``answers.AnswerModel`` (by the
image tags of its deployment's task definition) and only their metrics are written, at
1-second resolution, into the emulator's CloudWatch (``moto_cloudwatch``).

- **Entry points.** Every listener with a forward action receives `traffic_rps` requests per
  second, and so does every service whose RUNNING tasks have no load balancer: each is an
  application with its own clients, so adding a service does not thin the others' traffic.
  Fractional rates carry over (0.5 is one request every other second).
- **A listener** splits its requests evenly over its rules that forward (the default action
  is one of them: the emulator's requests have no path or host to match), each rule over its
  target groups by weight, and each group evenly over its `healthy` targets. A group without
  a healthy target loses its share (the ELB would answer 503 itself).
- **A service without a load balancer** spreads its requests evenly over its RUNNING tasks.

Every request is drawn at random (multinomial), as an ELB picks a target per request.

Metrics, written for every second with requests (counts included when 0, so a rate is always
defined; the ELB itself omits zero counts):

- `AWS/ApplicationELB` per {`TargetGroup`, `LoadBalancer`} and per {`LoadBalancer`}:
  `RequestCount`, `HTTPCode_Target_2XX_Count`, `HTTPCode_Target_5XX_Count`,
  `TargetResponseTime` (seconds, one value per request);
- `ECS/Emulator` per {`ClusterName`, `ServiceName`}: `RequestCount`, `Errors`, `Latency`
  (milliseconds, one value per request), whichever way the requests came;
- `ECS/ContainerInsights` per {`ClusterName`, `ServiceName`}, for every service with RUNNING
  tasks while traffic is on: `CpuUtilized` (CPU units) and `MemoryUtilized` (MiB), one value
  per task, from its utilisation and its task definition's reservation.

With `traffic_rps` 0 a second costs one comparison; otherwise its work grows with the tasks
and target groups that get requests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .metric_store import Dimensions
from .model import HEALTHY, Deployment, EmulatedTask
from .moto_cloudwatch import MetricWriter
from .moto_elbv2 import Listener, forwarding_listeners
from .scheduler import Scheduler
from .service_record import ServiceRecord
from .settings import EmulatorSettings

ELB_NAMESPACE = "AWS/ApplicationELB"
APPLICATION_NAMESPACE = "ECS/Emulator"
INSIGHTS_NAMESPACE = "ECS/ContainerInsights"


@dataclass(frozen=True)
class _Task:
    """A task that can answer, with the deployment that decides how."""

    record: ServiceRecord
    deployment: Deployment
    task: EmulatedTask


@dataclass
class _Pools:
    """Where requests can go this second, from the scheduler's state."""

    healthy: dict[str, list[_Task]] = field(default_factory=lambda: defaultdict(list))
    # By the service record's id (its ARN is worked out by moto at every read).
    unbalanced: dict[int, list[_Task]] = field(default_factory=lambda: defaultdict(list))
    running: list[_Task] = field(default_factory=list)

    @classmethod
    def collect(cls, services: list[ServiceRecord]) -> _Pools:
        pools = cls()
        for record in services:
            for deployment in record.deployments:
                for task in deployment.tasks:
                    if not task.running:
                        continue
                    entry = _Task(record, deployment, task)
                    pools.running.append(entry)
                    if not task.load_balanced:
                        pools.unbalanced[id(record)].append(entry)
                    for target in task.targets:
                        if target.state == HEALTHY:
                            pools.healthy[target.group.arn].append(entry)
        return pools


@dataclass
class _Tally:
    """Requests, 5XX answers and answer times (ms) of one metric's dimensions."""

    requests: int = 0
    errors: int = 0
    latencies: list[np.ndarray] = field(default_factory=list)

    def add(self, requests: int, errors: int, latencies: np.ndarray) -> None:
        self.requests += requests
        self.errors += errors
        self.latencies.append(latencies)

    @property
    def latency_ms(self) -> np.ndarray:
        return np.concatenate(self.latencies)


def arn_parts(arn: str) -> tuple[str, str, str]:
    """(account, region, resource) of an ELB ARN."""
    _, _, _, region, account_id, resource = arn.split(":", 5)
    return account_id, region, resource


def target_group_dimension(arn: str) -> str:
    """CloudWatch's `TargetGroup` value: `targetgroup/<name>/<id>`."""
    return arn_parts(arn)[2]


def load_balancer_dimension(arn: str) -> str:
    """CloudWatch's `LoadBalancer` value: `app/<name>/<id>`."""
    return arn_parts(arn)[2].removeprefix("loadbalancer/")


class Traffic:
    """One second of requests at a time; every method runs under the emulator lock."""

    def __init__(
        self, settings: EmulatorSettings, scheduler: Scheduler, rng: np.random.Generator
    ) -> None:
        self.settings = settings
        self._scheduler = scheduler
        self._rng = rng
        # Carried-over fractions of a request, by listener ARN or service record id.
        self._credits: dict[str | int, float] = {}
        # Requests sent since the start or the last reset.
        self.requests = 0

    def reset(self) -> None:
        self._credits.clear()
        self.requests = 0

    def send(self, second: int) -> None:
        """The requests of whole second `second` (seconds since the epoch), and their
        metrics, timestamped at that second."""
        rps = self.settings.traffic_rps
        if rps <= 0:
            self._credits.clear()
            return
        pools = _Pools.collect(self._scheduler.services())
        credits: dict[str | int, float] = {}
        second_metrics = _Second(second)
        for listener in forwarding_listeners():
            count = self._count(listener.arn, rps, credits)
            if count:
                self._to_listener(listener, count, pools, second_metrics)
        for service, tasks in pools.unbalanced.items():
            count = self._count(service, rps, credits)
            if count:
                shares = self._rng.multinomial(count, [1 / len(tasks)] * len(tasks))
                for entry, requests in zip(tasks, shares.tolist(), strict=True):
                    second_metrics.answer(entry, requests, self._rng, None, None)
        self._credits = credits
        self.requests += second_metrics.requests
        for entry in pools.running:
            second_metrics.utilisation(entry, self._rng)
        second_metrics.write()

    def _count(self, key: str | int, rps: float, credits: dict[str | int, float]) -> int:
        """This second's requests for one entry point; the fraction carries over."""
        due = self._credits.get(key, 0.0) + rps
        count = int(due)
        credits[key] = due - count
        return count

    def _to_listener(
        self, listener: Listener, count: int, pools: _Pools, second_metrics: _Second
    ) -> None:
        share_of_group: dict[str, float] = defaultdict(float)
        for route in listener.routes:
            total = sum(route.values())
            for group, weight in route.items():
                if total > 0:
                    share_of_group[group] += weight / total / len(listener.routes)
        destinations = [
            (group, entry)
            for group, share in share_of_group.items()
            if share > 0
            for entry in pools.healthy.get(group, [])
        ]
        if not destinations:
            return
        shares = [share_of_group[group] / len(pools.healthy[group]) for group, _ in destinations]
        lost = max(0.0, 1.0 - sum(shares))
        requests = self._rng.multinomial(count, [*shares, lost])[:-1]
        for (group, entry), answered in zip(destinations, requests.tolist(), strict=True):
            if answered:
                second_metrics.answer(entry, answered, self._rng, group, listener.load_balancer_arn)


class _Second:
    """The metrics of one second, summed per dimension set before they are written."""

    def __init__(self, second: int) -> None:
        self.second = second
        self.groups: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
        self.balancers: dict[str, _Tally] = defaultdict(_Tally)
        self.requests = 0
        # By the service record's id: the record, and what its tasks answered or used.
        self.records: dict[int, ServiceRecord] = {}
        self.services: dict[int, _Tally] = defaultdict(_Tally)
        self.cpu: dict[int, list[float]] = defaultdict(list)
        self.memory: dict[int, list[float]] = defaultdict(list)
        self._writers: dict[tuple[str, str], MetricWriter] = {}

    def answer(
        self,
        entry: _Task,
        requests: int,
        rng: np.random.Generator,
        group: str | None,
        balancer: str | None,
    ) -> None:
        self.requests += requests
        answers = entry.deployment.answers
        latencies = answers.latencies_ms(rng, requests)
        errors = answers.errors(rng, requests)
        self.records[id(entry.record)] = entry.record
        self.services[id(entry.record)].add(requests, errors, latencies)
        if group is not None and balancer is not None:
            self.groups[(group, balancer)].add(requests, errors, latencies)
            self.balancers[balancer].add(requests, errors, latencies)

    def utilisation(self, entry: _Task, rng: np.random.Generator) -> None:
        deployment, service = entry.deployment, id(entry.record)
        self.records[service] = entry.record
        self.cpu[service].append(deployment.answers.cpu(rng) / 100 * deployment.cpu_units)
        self.memory[service].append(deployment.answers.memory(rng) / 100 * deployment.memory_mb)

    def write(self) -> None:
        dimensions: Dimensions
        for (group, balancer), tally in self.groups.items():
            dimensions = (
                ("LoadBalancer", load_balancer_dimension(balancer)),
                ("TargetGroup", target_group_dimension(group)),
            )
            self._write_elb(arn_parts(group), dimensions, tally)
        for balancer, tally in self.balancers.items():
            dimensions = (("LoadBalancer", load_balancer_dimension(balancer)),)
            self._write_elb(arn_parts(balancer), dimensions, tally)
        for service, tally in self.services.items():
            writer, dimensions = self._service_writer(self.records[service])
            for name, values, unit in (
                ("RequestCount", [tally.requests], "Count"),
                ("Errors", [tally.errors], "Count"),
            ):
                writer.values(
                    APPLICATION_NAMESPACE, name, dimensions, self.second, np.array(values), unit
                )
            writer.values(
                APPLICATION_NAMESPACE,
                "Latency",
                dimensions,
                self.second,
                tally.latency_ms,
                "Milliseconds",
            )
        for service, cpu in self.cpu.items():
            writer, dimensions = self._service_writer(self.records[service])
            writer.values(
                INSIGHTS_NAMESPACE, "CpuUtilized", dimensions, self.second, np.array(cpu), "None"
            )
            writer.values(
                INSIGHTS_NAMESPACE,
                "MemoryUtilized",
                dimensions,
                self.second,
                np.array(self.memory[service]),
                "Megabytes",
            )

    def _write_elb(
        self,
        where: tuple[str, str, str],
        dimensions: tuple[tuple[str, str], ...],
        tally: _Tally,
    ) -> None:
        writer = self._writer(where[0], where[1])
        counts = (
            ("RequestCount", tally.requests),
            ("HTTPCode_Target_2XX_Count", tally.requests - tally.errors),
            ("HTTPCode_Target_5XX_Count", tally.errors),
        )
        for name, value in counts:
            writer.values(
                ELB_NAMESPACE, name, dimensions, self.second, np.array([float(value)]), "Count"
            )
        writer.values(
            ELB_NAMESPACE,
            "TargetResponseTime",
            dimensions,
            self.second,
            tally.latency_ms / 1000,
            "Seconds",
        )

    def _service_writer(self, record: ServiceRecord) -> tuple[MetricWriter, Dimensions]:
        handle = record.handle
        dimensions = (("ClusterName", handle.cluster), ("ServiceName", handle.name))
        return self._writer(handle.account_id, handle.region), dimensions

    def _writer(self, account_id: str, region: str) -> MetricWriter:
        writer = self._writers.get((account_id, region))
        if writer is None:
            writer = self._writers[(account_id, region)] = MetricWriter(account_id, region)
        return writer
