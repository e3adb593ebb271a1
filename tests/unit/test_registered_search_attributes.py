"""A worker's memory of a namespace's search attributes (ecs_canary.registered_search_attributes):
only a listing that found every attribute registered is remembered, for REMEMBERED_SECONDS,
and only for the same server, namespace and names."""

from __future__ import annotations

from ecs_canary.registered_search_attributes import REMEMBERED_SECONDS, RegisteredSearchAttributes

NAMES = ["EcsCluster", "EcsService", "DeploymentStage", "DeploymentOutcome"]


def test_a_complete_listing_is_remembered_for_a_while() -> None:
    registered = RegisteredSearchAttributes()
    listing = registered.listing("127.0.0.1:7233", "default", NAMES)
    assert not registered.all_registered(listing, now=100.0)

    registered.listed(listing, missing=[], now=100.0)

    assert registered.all_registered(listing, now=100.0)
    assert registered.all_registered(listing, now=100.0 + REMEMBERED_SECONDS - 0.01)
    assert not registered.all_registered(listing, now=100.0 + REMEMBERED_SECONDS)
    # A clock that went back (another worker's notion of now) does not count as fresh.
    assert not registered.all_registered(listing, now=99.0)


def test_a_listing_with_something_missing_is_never_remembered_and_forgets_the_last() -> None:
    registered = RegisteredSearchAttributes()
    listing = registered.listing("127.0.0.1:7233", "default", NAMES)
    registered.listed(listing, missing=[], now=100.0)

    registered.listed(listing, missing=["DeploymentStage"], now=101.0)

    assert not registered.all_registered(listing, now=101.0)


def test_each_server_namespace_and_set_of_names_is_its_own_listing() -> None:
    registered = RegisteredSearchAttributes()
    registered.listed(registered.listing("127.0.0.1:7233", "default", NAMES), [], now=100.0)

    assert registered.all_registered(
        registered.listing("127.0.0.1:7233", "default", reversed(NAMES)), now=100.0
    )
    for other in (
        registered.listing("127.0.0.1:7234", "default", NAMES),
        registered.listing("127.0.0.1:7233", "payments", NAMES),
        registered.listing("127.0.0.1:7233", "default", [*NAMES, "Team"]),
    ):
        assert not registered.all_registered(other, now=100.0)
