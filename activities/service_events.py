"""ECS service events in a wait's log: each once, oldest first, in ECS's own words, even when
a wait is retried on another worker (the ids seen so far travel in its heartbeat)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ecs_canary.models import WaitProgress

# Enough event ids to recognise every event ECS still returns (it keeps about 100).
_SEEN_EVENTS_KEPT = 200
_RECENT_EVENTS_KEPT = 5


def event_line(event: dict[str, Any]) -> str:
    created = event["createdAt"]
    stamp = (
        created.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if isinstance(created, datetime) else created
    )
    return f"# AWS Event: {stamp} {event['message']}"


def log_new_events(
    service: dict[str, Any] | None, since: datetime, progress: WaitProgress, log: Any
) -> None:
    """Log each ECS service event of this step once, oldest first, even across retries."""
    if service is None:
        return
    seen = set(progress.seen_event_ids)
    for event in reversed(service.get("events", [])):
        if event["id"] in seen or event["createdAt"] < since:
            continue
        line = event_line(event)
        log.info(line)
        progress.seen_event_ids.append(event["id"])
        progress.recent_events = [*progress.recent_events, line][-_RECENT_EVENTS_KEPT:]
    del progress.seen_event_ids[:-_SEEN_EVENTS_KEPT]
