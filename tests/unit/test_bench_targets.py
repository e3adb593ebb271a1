"""The bench's verdicts (bench.report.targets): a target whose measure did not run in this
bench (`BENCH_MEASURES=train` runs the train alone) says so instead of "NOT met", and a
measured one is judged on its numbers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.report import targets

CONFIG = SimpleNamespace(delays=[1.0], poll=0.25)


def _single(variant: str, calls: int) -> dict[str, Any]:
    return {"variant": variant, "delay": 1.0, "calls": {"total": calls}, "ratio": 1.0}


def _calls_row(results: dict[str, Any]) -> tuple[str, str, str]:
    rows = [row for row in targets(CONFIG, results) if row[0].startswith("ECS calls")]
    assert len(rows) == 1
    return rows[0]


def test_a_measure_not_run_has_no_verdict() -> None:
    _, measured, verdict = _calls_row({})
    assert measured.startswith("not run")
    assert verdict == "n/a"


def test_a_measured_target_is_judged_on_its_numbers() -> None:
    fewer = {"single": [_single("ecs-canary", 9), _single("baseline", 10)]}
    more = {"single": [_single("ecs-canary", 11), _single("baseline", 10)]}
    assert _calls_row(fewer)[1:] == ("9 vs 10", "**met**")
    assert _calls_row(more)[1:] == ("11 vs 10", "**NOT met**")
