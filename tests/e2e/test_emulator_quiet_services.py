"""A tick of the emulator's scheduler skips the services it cannot change (settled, or INACTIVE
with nothing left), and every request that changes one wakes it: a service left alone long
enough to be skipped still replaces a stopped task, scales and is deleted as ECS would."""

from __future__ import annotations

from typing import Any

from ecs_emulator.moto_internals import find_service
from tests.helpers import (
    CLUSTER,
    FAST_WAITER,
    create_service,
    describe,
    register,
    tasks_of,
    wait_stable,
    wait_until_sync,
)


def _skipped(emulator: Any, arn: str) -> bool:
    """The scheduler's tick skips the service now (the emulator runs in this process)."""
    _, _, _, region, account_id, resource = arn.split(":", 5)
    _, cluster, name = resource.split("/")
    ref = find_service(account_id, region, cluster, name)
    return ref is not None and ref.key in emulator._scheduler._quiet


def test_a_skipped_service_still_answers_every_change(ecs: Any, emulator: Any) -> None:
    arn = create_service(ecs, "still", register(ecs), 2)["serviceArn"]
    wait_stable(ecs, "still")
    wait_until_sync(lambda: _skipped(emulator, arn))

    running = [t for t in tasks_of(ecs, "still") if t["lastStatus"] == "RUNNING"]
    ecs.stop_task(cluster=CLUSTER, task=running[0]["taskArn"], reason="rehearsal")
    stopped = wait_until_sync(
        lambda: [
            t
            for t in tasks_of(ecs, "still", desiredStatus="STOPPED")
            if t["taskArn"] == running[0]["taskArn"] and t["lastStatus"] == "STOPPED"
        ]
    )
    assert stopped[0]["stoppedReason"] == "rehearsal"
    assert wait_stable(ecs, "still")["runningCount"] == 2  # replaced

    wait_until_sync(lambda: _skipped(emulator, arn))
    ecs.update_service(cluster=CLUSTER, service="still", desiredCount=3)
    assert wait_stable(ecs, "still")["runningCount"] == 3

    wait_until_sync(lambda: _skipped(emulator, arn))
    ecs.delete_service(cluster=CLUSTER, service="still", force=True)
    ecs.get_waiter("services_inactive").wait(
        cluster=CLUSTER, services=["still"], WaiterConfig=FAST_WAITER
    )
    assert describe(ecs, "still")["runningCount"] == 0
