"""The bench's reading of the dev server's metrics (bench.server_metrics): what the server
counted between two readings, summed over the series of one operation or task type, and read
from its histograms as bucket bounds."""

from __future__ import annotations

from bench.server_metrics import ServerMetrics, during, summary


def _histogram(name: str, label: str, part: str, buckets: dict[str, int], total: float) -> str:
    lines = [f"# TYPE {name} histogram"]
    for bound, count in buckets.items():
        lines.append(
            f'{name}_bucket{{{label}="{part}",service_name="history",le="{bound}"}} {count}'
        )
    lines.append(f'{name}_sum{{{label}="{part}",service_name="history"}} {total}')
    lines.append(f'{name}_count{{{label}="{part}",service_name="history"}} {buckets["+Inf"]}')
    return "\n".join(lines)


def _reading(queries_held: dict[str, int], closes: dict[str, int], attempts: float) -> str:
    """A /metrics text with buffered queries, child-close attempts and lock timeouts."""
    return "\n".join(
        [
            _histogram(
                "workflow_task_query_latency", "operation", "QueryWorkflow", queries_held, 1.0
            ),
            _histogram(
                "task_attempt",
                "task_type",
                "TransferActiveTaskCloseExecution",
                closes,
                attempts,
            ),
            "# TYPE acquire_lock_failed counter",
            f'acquire_lock_failed{{operation="HistoryCacheGetOrCreate"}} {attempts}',
            "",
        ]
    )


def test_what_the_server_counted_between_two_readings() -> None:
    before = ServerMetrics.parse(
        _reading({"0.5": 2, "1": 2, "5": 2, "+Inf": 2}, {"1": 10, "2": 10, "+Inf": 10}, 10)
    )
    # Three more queries held (one up to 5 s) and 100 closes, 30 of them retried once.
    after = ServerMetrics.parse(
        _reading({"0.5": 4, "1": 4, "5": 5, "+Inf": 5}, {"1": 80, "2": 110, "+Inf": 110}, 140)
    )

    counted = during(before, after)

    assert counted["queries_held"] == {"count": 3, "at_most_seconds": 5.0}
    closes = counted["background"]["child_closes"]
    assert (closes["tasks"], closes["retries"], closes["most_attempts"]) == (100, 30, 2.0)
    assert counted["lock_timeouts"] == 130
    # Nothing observed: no count, no bound.
    assert counted["queries_direct"] == {"count": 0, "at_most_seconds": 0.0}
    assert "held 3 queries for a workflow task in flight (each at most 5 s)" in summary(counted)


def test_a_share_past_the_last_bound_reads_as_unbounded() -> None:
    reading = ServerMetrics.parse(
        _reading({"0.5": 98, "1": 99, "+Inf": 100}, {"1": 1, "+Inf": 1}, 1)
    )
    held = reading.histogram(("workflow_task_query_latency", "QueryWorkflow"))
    assert held.at_most(0.98) == 0.5
    assert held.at_most(0.99) == 1.0
    assert held.at_most(1.0) == float("inf")


def test_the_database_calls_and_the_search_attribute_reads_among_them() -> None:
    def reading(updates: int, metadata: int) -> ServerMetrics:
        return ServerMetrics.parse(
            "\n".join(
                [
                    _histogram(
                        "persistence_latency",
                        "operation",
                        "UpdateWorkflowExecution",
                        {"0.001": updates, "+Inf": updates},
                        updates * 0.002,
                    ),
                    _histogram(
                        "persistence_latency",
                        "operation",
                        "GetCurrentClusterMetadata",
                        {"0.001": metadata, "+Inf": metadata},
                        metadata * 0.001,
                    ),
                    # Visibility's calls go through the same connection.
                    _histogram(
                        "visibility_persistence_latency",
                        "operation",
                        "RecordWorkflowExecutionClosed",
                        {"0.001": updates // 10, "+Inf": updates // 10},
                        updates // 10 * 0.001,
                    ),
                    "",
                ]
            )
        )

    counted = during(reading(100, 40), reading(1100, 540))

    database = counted["database"]
    assert database["calls"] == 1600
    assert database["search_attribute_reads"] == 500
    assert abs(database["seconds"] - 2.6) < 1e-9
    assert "database was called 1600 times, 2.6 s in all, 500 of them reads" in summary(counted)
