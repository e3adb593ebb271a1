"""A user's check workflow for the `workflow` verification step, in a module of its own: the
sandbox re-imports a workflow's module for every run, so it imports nothing heavy."""

from __future__ import annotations

from typing import Any

from temporalio import workflow


@workflow.defn(name="FakeCheck")
class FakeCheck:
    """Passes or fails as its input says, or waits until it is cancelled."""

    @workflow.run
    async def run(self, check: dict[str, Any]) -> dict[str, Any]:
        verdict = check["input"]
        if verdict == "hang":
            await workflow.wait_condition(lambda: False)
        return {"passed": verdict == "pass", "summary": f"{check['canary_service']}: {verdict}"}
