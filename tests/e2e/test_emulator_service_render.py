"""The emulator renders a described service again only when it changed
(ecs_emulator.moto_service_render): what a client reads is what moto's own rendering says,
whatever it read before."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.serialize import BaseJSONSerializer

from ecs_emulator import moto_service_render
from tests.helpers import existing_service


@contextmanager
def motos_own_rendering() -> Iterator[None]:
    """moto's own method while the block runs (the emulator runs in this process)."""
    name = moto_service_render.REPLACED_SERIALIZER_METHOD
    remembered = getattr(BaseJSONSerializer, name)
    setattr(BaseJSONSerializer, name, moto_service_render._ORIGINAL)
    try:
        yield
    finally:
        setattr(BaseJSONSerializer, name, remembered)


def _described(ecs: Any, cluster: str, **extra: Any) -> dict[str, Any]:
    found = ecs.describe_services(cluster=cluster, services=["myapp"], **extra)
    return found["services"][0]


def test_a_described_service_reads_as_motos_own_rendering_before_and_after_changes(
    ecs, ecs_state, requests
):
    cluster = ecs_state["cluster"]
    existing_service(ecs, requests, desired=2)
    arn = _described(ecs, cluster)["serviceArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "payments"}])

    first = _described(ecs, cluster)
    again = _described(ecs, cluster)
    with_tags = _described(ecs, cluster, include=["TAGS"])
    without_tags = _described(ecs, cluster)
    with motos_own_rendering():
        own = _described(ecs, cluster)
        own_with_tags = _described(ecs, cluster, include=["TAGS"])
    assert first == again == without_tags == own
    assert "tags" not in first  # left out unless asked, as by moto
    assert with_tags == own_with_tags
    assert with_tags["tags"] == [{"key": "team", "value": "payments"}]

    ecs.update_service(cluster=cluster, service="myapp", desiredCount=3)
    ecs.get_waiter("services_stable").wait(
        cluster=cluster, services=["myapp"], WaiterConfig={"Delay": 0.1, "MaxAttempts": 300}
    )
    changed = _described(ecs, cluster)  # (the last poll's rendering, read again)
    with motos_own_rendering():
        own_changed = _described(ecs, cluster)
    assert changed["desiredCount"] == changed["runningCount"] == 3
    assert changed == own_changed
