"""The four stages end to end against the emulator and a real Temporal dev server."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import describe, existing_service, in_order, wait_for_stage


async def test_happy_path_promotes_the_canary(worker, requests, ecs, emulator, logs, deploy):
    old_arn = existing_service(ecs, requests)
    # Tasks start slowly enough that the first look finds the canary's still pending (0/1),
    # however late a loaded machine makes it.
    emulator.admin.settings(task_start_seconds=1.5)
    handle = await deploy(requests.raw())

    gate = await wait_for_stage(handle, "verification", gate_open=True)
    assert gate.task_definition_arn and gate.task_definition_arn != old_arn
    assert (gate.running_count, gate.desired_count) == (1, 1)
    assert any("(service myappCanary) has started 1 tasks" in e for e in gate.recent_events)
    await handle.signal("approve", {"by": "alice", "reason": "canary looks good"})
    result = await handle.result()

    assert result.outcome == "succeeded"
    if record_to := os.environ.get("RECORD_HISTORY"):  # e.g. tests/histories/happy_path_v3.json
        Path(record_to).write_text((await handle.fetch_history()).to_json())
    assert result.decision and result.decision.by == "alice"
    main = describe(ecs, "myapp")
    assert main["taskDefinition"] == result.task_definition_arn
    assert (main["desiredCount"], main["runningCount"]) == (3, 3)
    assert describe(ecs, "myappCanary")["status"] == "INACTIVE"
    family, arn = "myapp-task", result.task_definition_arn
    assert in_order(
        logs.lines(),
        [
            f"Creating Task Definition with family {family}",
            f"Created Task Definition {family}:2 with Arn {arn}",
            f"Creating Service myappCanary with task definition {arn} and desired count 1",
            "Waiting for pending tasks to finish. 0/1 running ...",
            "# AWS Event: ",
            "Waiting for pending tasks to finish. 1/1 running ...",
            "Waiting for Service myappCanary to reach steady state",
            "Service myappCanary reached steady state",
            "Created Service myappCanary with Arn ",
            "Deleting service myappCanary..",
            "Waiting for existing Service myappCanary to reach inactive state",
            "Existing Service myappCanary reached inactive state",
            "Canary service myappCanary deleted",
            f"Updating Service myapp with task definition {arn} and desired count 3",
            "Waiting for Service myapp to reach steady state",
            "Service myapp reached steady state",
            "Deployment Successful.",
        ],
    ), "\n".join(logs.lines())
    events = [line for line in logs.lines() if line.startswith("# AWS Event: ")]
    assert any("(service myappCanary) has started 1 tasks: (task " in line for line in events)
    assert any("(service myapp) has started 3 tasks: (task " in line for line in events)
    assert len(events) == len(set(events)), "each ECS event is logged once"
    for service in ("myappCanary", "myapp"):
        assert logs.lines().count(f"Waiting for Service {service} to reach steady state") == 1
