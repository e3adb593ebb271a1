"""What a worker remembers of a namespace's search attributes: that all of a run's were
registered when it last listed them, for `REMEMBERED_SECONDS`.

Why: every deployment starts by listing them (activities.search_attributes), and Temporal
answers a listing from its database, never from its cache. A release train's wave of 600 asked
600 times within seconds for the same answer; one listing now serves the runs a worker starts
in the next half minute. Only "all registered" is remembered: an attribute registered since is
seen by the next run, as before. An attribute removed is seen at most `REMEMBERED_SECONDS`
later; runs in flight break on its removal anyway, since they upsert it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

REMEMBERED_SECONDS = 30.0

# (the Temporal server's address, the namespace, the attribute names asked for)
Listing = tuple[str, str, frozenset[str]]


@dataclass
class RegisteredSearchAttributes:
    """When each listing last found every attribute asked for registered (monotonic seconds)."""

    found_at: dict[Listing, float] = field(default_factory=dict)

    @staticmethod
    def listing(server: str, namespace: str, names: Iterable[str]) -> Listing:
        return (server, namespace, frozenset(names))

    def all_registered(self, listing: Listing, now: float) -> bool:
        """Whether a listing less than REMEMBERED_SECONDS old found them all."""
        found_at = self.found_at.get(listing)
        return found_at is not None and 0 <= now - found_at < REMEMBERED_SECONDS

    def listed(self, listing: Listing, missing: list[str], now: float) -> None:
        """Remember a listing's answer when nothing was missing; forget the listing otherwise."""
        if missing:
            self.found_at.pop(listing, None)
        else:
            self.found_at[listing] = now
