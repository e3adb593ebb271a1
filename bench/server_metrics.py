"""What the Temporal dev server itself says about a measure: its Prometheus metrics, read before
and after the train of 1,000 (`--metrics-port`, a free port on loopback).

Why: a train's `status` waits whenever the train has a workflow task in flight (Temporal holds
the query for it), and the train's tasks wait on the server's lock of the train, which 1,000
children's starts and closes contend for. The client sees only how long `status` took; the
server counts why: queries it held for a workflow task and queries it sent on at once, lock
waits that ran out (its background tasks give up after `history.cacheNonUserContextLockTimeout`,
0.5 s, and are retried later), and how many attempts its child starts, child closes and
workflow task dispatches took, and how many calls its database answered and how long they took
(every lock holder writes through the dev server's one SQLite connection). The counts cover the
whole server (the train's deployments too);
most of the lock's contention is the train's, the only run with 1,000 children.

Durations come from the server's histograms, so each is the upper bound of a bucket
("at most 0.5 s"), not an exact value.
"""

from __future__ import annotations

import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# A metric's series, summed over the rest of their labels: (metric name, operation or task
# type).
Key = tuple[str, str]

# The series read here.
_QUERIES_HELD = ("workflow_task_query_latency", "QueryWorkflow")
_QUERIES_DIRECT = ("direct_query_dispatch_latency", "QueryWorkflow")
_LOCK_WAIT = ("cache_latency", "HistoryCacheGetOrCreate")
_LOCK_HOLD = ("history_workflow_execution_cache_lock_hold_duration", "HistoryCacheGetOrCreate")
_LOCK_TIMEOUTS = ("acquire_lock_failed", "HistoryCacheGetOrCreate")
# Every call to the server's database, by operation, its visibility's too: the dev server has
# one SQLite connection for both, so their summed latency says how long calls queued for it.
# Of those, the reads of search attributes (the cluster's metadata, and the namespace's aliases
# of them).
_DATABASE = ("persistence_latency", "visibility_persistence_latency")
_SEARCH_ATTRIBUTE_READS = [
    ("persistence_latency", "GetCurrentClusterMetadata"),
    ("persistence_latency", "GetNamespace"),
]
_ATTEMPTS = "task_attempt"
_QUEUED = "task_latency_queue"
# The server's background tasks a train's children make, by what they do for the train.
BACKGROUND_TASKS = {
    "child_starts": "TransferActiveTaskStartChildExecution",
    "child_closes": "TransferActiveTaskCloseExecution",
    "workflow_task_dispatches": "TransferActiveTaskWorkflowTask",
}


@dataclass
class Histogram:
    """One histogram summed over its series: cumulative counts by bucket bound, and the sum."""

    buckets: dict[float, float] = field(default_factory=dict)
    total: float = 0.0

    @property
    def count(self) -> float:
        return self.buckets.get(float("inf"), 0.0)

    def minus(self, before: Histogram) -> Histogram:
        """What was observed between `before` and this reading."""
        return Histogram(
            {bound: n - before.buckets.get(bound, 0.0) for bound, n in self.buckets.items()},
            self.total - before.total,
        )

    def at_most(self, share: float) -> float:
        """The smallest bucket bound that `share` of the observations are within (inf when the
        rest are past the last bound); 0 with no observation."""
        if self.count == 0:
            return 0.0
        return min(b for b, n in self.buckets.items() if n >= share * self.count)


@dataclass
class ServerMetrics:
    """One reading of the dev server's /metrics: the histograms and counters read here, by
    (metric, operation or task type)."""

    histograms: dict[Key, Histogram] = field(default_factory=lambda: defaultdict(Histogram))
    counters: dict[Key, float] = field(default_factory=lambda: defaultdict(float))

    @classmethod
    def parse(cls, text: str) -> ServerMetrics:
        read = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                part = sample.labels.get("task_type") or sample.labels.get("operation", "")
                if family.type == "histogram" and sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    buckets = read.histograms[(family.name, part)].buckets
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
                elif family.type == "histogram" and sample.name.endswith("_sum"):
                    read.histograms[(family.name, part)].total += sample.value
                elif family.type == "counter" and not sample.name.endswith("_created"):
                    read.counters[(family.name, part)] += sample.value
        return read

    def histogram(self, key: Key) -> Histogram:
        return self.histograms.get(key, Histogram())


def read_metrics(url: str) -> ServerMetrics:
    """The server's metrics now."""
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (loopback, ours)
        return ServerMetrics.parse(answer.read().decode())


def during(before: ServerMetrics, after: ServerMetrics) -> dict[str, Any]:
    """What the server counted between two readings (the train), as `results.json` keeps it."""

    def observed(key: Key) -> Histogram:
        return after.histogram(key).minus(before.histogram(key))

    held, direct = observed(_QUERIES_HELD), observed(_QUERIES_DIRECT)
    waits, holds = observed(_LOCK_WAIT), observed(_LOCK_HOLD)
    background = {}
    for name, task_type in BACKGROUND_TASKS.items():
        attempts = observed((_ATTEMPTS, task_type))
        background[name] = {
            "tasks": attempts.count,
            "retries": attempts.total - attempts.count,
            "most_attempts": attempts.at_most(1.0),
            "queued_at_most_seconds": observed((_QUEUED, task_type)).at_most(1.0),
        }
    timeouts = after.counters.get(_LOCK_TIMEOUTS, 0.0) - before.counters.get(_LOCK_TIMEOUTS, 0.0)
    calls = {key: observed(key) for key in after.histograms if key[0] in _DATABASE}
    return {
        "queries_held": {"count": held.count, "at_most_seconds": held.at_most(1.0)},
        "queries_direct": {"count": direct.count, "at_most_seconds": direct.at_most(1.0)},
        "lock_wait": {
            "p99_at_most_seconds": waits.at_most(0.99),
            "at_most_seconds": waits.at_most(1.0),
        },
        "lock_hold": {
            "p99_at_most_seconds": holds.at_most(0.99),
            "at_most_seconds": holds.at_most(1.0),
        },
        "lock_timeouts": timeouts,
        "background": background,
        "database": {
            "calls": sum(call.count for call in calls.values()),
            "seconds": sum(call.total for call in calls.values()),
            "search_attribute_reads": sum(
                calls[read].count for read in _SEARCH_ATTRIBUTE_READS if read in calls
            ),
        },
    }


def summary(server: dict[str, Any]) -> str:
    """One line of the bench's log and report: why the train's `status` waited."""
    held, direct = server["queries_held"], server["queries_direct"]
    wait, hold, background = server["lock_wait"], server["lock_hold"], server["background"]
    database = server.get("database")  # not in results written before it was read
    retried = ", ".join(
        f"{name.replace('_', ' ')} {task['retries']:.0f} (at most {task['most_attempts']:.0f} "
        f"attempts, queued at most {task['queued_at_most_seconds']:g} s)"
        for name, task in background.items()
    )
    return (
        f"the dev server held {held['count']:.0f} queries for a workflow task in flight (each "
        f"at most {held['at_most_seconds']:g} s) and sent {direct['count']:.0f} on at once (at "
        f"most {direct['at_most_seconds']:g} s); workflow locks waited for at most "
        f"{wait['at_most_seconds']:g} s (99% at most {wait['p99_at_most_seconds']:g} s), held "
        f"at most {hold['at_most_seconds']:g} s (99% at most {hold['p99_at_most_seconds']:g} s), "
        f"{server['lock_timeouts']:.0f} waits ran out; retried: {retried}"
        + (
            f"; its database was called {database['calls']:.0f} times, {database['seconds']:.1f} s "
            f"in all, {database['search_attribute_reads']:.0f} of them reads of search attributes"
            if database
            else ""
        )
    )
