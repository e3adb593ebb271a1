"""What the train bench reads about the machine (bench/stack.py): how long its cores sat idle,
and how much CPU a fixed piece of work takes on the host."""

from __future__ import annotations

from bench.stack import fixed_work_seconds, idle_cpu_seconds
from tests.helpers import wait_until_sync


def test_idle_time_only_grows_and_grows_while_the_cores_wait() -> None:
    before = idle_cpu_seconds()
    assert before > 0
    # A blocked wait leaves a core idle: the count must move past where it was.
    assert wait_until_sync(lambda: idle_cpu_seconds() > before, timeout=10)
    assert idle_cpu_seconds() >= before


def test_the_fixed_work_takes_some_cpu_and_about_the_same_twice() -> None:
    first, second = fixed_work_seconds(), fixed_work_seconds()
    assert 0 < first < 10 and 0 < second < 10
    assert max(first, second) < 3 * min(first, second)  # the fastest of three, both times
