"""A worker lists the namespace's search attributes once for the runs it starts in the next half
minute (ecs_canary.registered_search_attributes), against a real server that counts the
listings it answers: a release train's wave asks the same question hundreds of times within
seconds, and Temporal answers each listing from its database."""

from __future__ import annotations

from temporalio.testing import ActivityEnvironment

from activities.search_attributes import missing_search_attributes
from bench.server_metrics import read_metrics
from bench.stack import dev_server
from ecs_canary import search_attributes

NAMES = [key.name for key in search_attributes.ALL]
LISTINGS = ("service_latency", "OperatorListSearchAttributes")


async def test_a_complete_listing_serves_the_next_runs_and_a_gap_is_listed_each_time() -> None:
    async with dev_server() as (env, metrics_url):
        activities = ActivityEnvironment(client=env.client)

        def listings() -> float:
            return read_metrics(metrics_url).histogram(LISTINGS).count

        before = listings()
        for _ in range(3):
            checks = await activities.run(missing_search_attributes, NAMES)
            assert checks.missing_search_attributes == []
        assert listings() - before == 1

        # A name the namespace lacks is never remembered: each run lists, and finds it missing.
        for _ in range(2):
            checks = await activities.run(missing_search_attributes, [*NAMES, "NotRegistered"])
            assert checks.missing_search_attributes == ["NotRegistered"]
        assert listings() - before == 3

        # A run that asks for none (a release train's own run) lists nothing.
        assert (await activities.run(missing_search_attributes, [])).missing_search_attributes == []
        assert listings() - before == 3
