"""Metrics as Prometheus reads them: `scrape` parses a `/metrics` page with prometheus_client's
parser (`Scrape.value` adds up the samples of one name whose labels include the given ones: a
counter recorded by several activity or workflow types is several samples); `metrics_worker`
is `python worker.py --metrics-port N`; `prometheus_server` is Debian's real Prometheus
scraping it, and `Prometheus.query_range` asks its HTTP API what a Grafana panel would."""

from __future__ import annotations

import json
import math
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.helpers.processes import free_port, stop
from tests.helpers.waiting import wait_until_sync
from tests.helpers.workers import spawn_worker

PROMETHEUS = Path("/usr/bin/prometheus")


@dataclass(frozen=True)
class Scrape:
    samples: tuple[Sample, ...]

    def names(self) -> set[str]:
        return {sample.name for sample in self.samples}

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [
            sample
            for sample in self.samples
            if sample.name == name
            and all(sample.labels.get(key) == value for key, value in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the matching samples (0 when there is none)."""
        return sum(sample.value for sample in self.matching(name, **labels))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """The samples of `name` added up per value of `label`."""
        totals: dict[str, float] = {}
        for sample in self.matching(name):
            key = sample.labels.get(label, "")
            totals[key] = totals.get(key, 0.0) + sample.value
        return totals

    def with_prefix(self, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample whose name starts with `prefix`, keyed by name and labels."""
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in self.samples
            if sample.name.startswith(prefix)
        }


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    families = text_string_to_metric_families(text)
    return Scrape(tuple(sample for family in families for sample in family.samples))


@contextmanager
def metrics_worker(address: str, task_queue: str, log_path: Path) -> Iterator[str]:
    """`python worker.py --metrics-port <free port>`, its gauges refreshed twice a second,
    stopped when the block ends; yields its `/metrics` URL."""
    port = free_port()
    process = spawn_worker(
        address,
        task_queue,
        log_path,
        program=("worker.py", "--metrics-port", str(port)),
        ECS_CANARY_METRICS_REFRESH_SECONDS="0.5",
    )
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        stop(process)


@dataclass(frozen=True)
class Prometheus:
    url: str

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as answer:
            body = json.load(answer)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: str) -> list[dict[str, Any]]:
        """A range query, as a Grafana time series panel asks it."""
        data = self.api("query_range", query=expr, start=str(start), end=str(end), step=step)
        result: list[dict[str, Any]] = data["result"]
        return result


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    """The numbers in a query's answer, NaN left out (a quantile of no observations)."""
    values = [float(value) for series in result for _, value in series.get("values", [])]
    values += [float(series["value"][1]) for series in result if "value" in series]
    return [value for value in values if not math.isnan(value)]


@contextmanager
def prometheus_server(
    metrics_url: str, directory: Path, scrape_seconds: float = 1
) -> Iterator[Prometheus]:
    """Debian's Prometheus on loopback and a free port, scraping `metrics_url` every
    `scrape_seconds`, its storage in `directory`; stopped when the block ends."""
    target = urllib.parse.urlsplit(metrics_url)
    config = {
        "global": {"scrape_interval": f"{scrape_seconds}s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "ecs-canary-worker",
                "metrics_path": target.path,
                "static_configs": [{"targets": [target.netloc]}],
            }
        ],
    }
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    address = f"127.0.0.1:{free_port()}"
    with (directory / "prometheus.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=log,
        )
    try:
        server = Prometheus(f"http://{address}")
        wait_until_sync(lambda: _ready(server, process), timeout=60)
        yield server
    finally:
        stop(process)


def _ready(server: Prometheus, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "prometheus exited (see prometheus.log)"
    try:
        with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False
