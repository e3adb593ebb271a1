"""Standalone tasks (RunTask): one-off runs such as a test suite against a canary.

No service owns them, so nothing replaces them: they start like service tasks, run for
``task_run_seconds`` and stop with ``stopCode`` EssentialContainerExited, unless their image
tag says otherwise (``testfail``: exit code 1, ``testhang``: never exits by itself; the
service faults ``nopull``, ``crash`` and ``slow`` apply too). StopTask ends them early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .faults import TEST_VERDICTS, fault_from_images
from .lifecycle import TaskLifecycle
from .model import EmulatedTask
from .moto_internals import ClusterRef, TaskDefinitionInfo


@dataclass(frozen=True)
class RunRequest:
    """The RunTask parameters that shape the tasks, already validated."""

    count: int
    group: str
    started_by: str | None
    launch_type: str
    platform_version: str | None
    network: dict[str, Any] | None
    overrides: dict[str, Any] | None
    tags: list[dict[str, str]] | None
    capacity_provider_name: str | None


class StandaloneTasks:
    """The live standalone tasks; every method runs under the emulator lock.

    Tasks leave this registry once STOPPED (moto keeps them, so they stay listed and
    described until a reset, like ECS keeps stopped tasks for a while).
    """

    def __init__(self, lifecycle: TaskLifecycle) -> None:
        self._lifecycle = lifecycle
        self._live: dict[str, tuple[EmulatedTask, ClusterRef]] = {}

    def run(
        self, cluster: ClusterRef, definition: TaskDefinitionInfo, request: RunRequest, now: float
    ) -> list[str]:
        """Start ``request.count`` tasks; returns their ARNs."""
        fault = fault_from_images(definition.images)
        verdict = fault_from_images(definition.images, TEST_VERDICTS)
        verdict_name, verdict_image = verdict or (None, None)
        run_seconds = self._lifecycle.settings.task_run_seconds
        exit_after = None if verdict_name == "testhang" else run_seconds
        exit_code = 1 if verdict_name == "testfail" else 0
        arns = []
        for _ in range(request.count):
            handle = cluster.start_task(
                definition.arn,
                group=request.group,
                started_by=request.started_by,
                launch_type=request.launch_type,
                platform_version=request.platform_version,
                network=request.network,
                overrides=request.overrides,
                tags=request.tags,
                capacity_provider_name=request.capacity_provider_name,
            )
            task = self._lifecycle.launch(
                handle,
                now,
                fault=fault[0] if fault else None,
                fault_image=fault[1] if fault else "",
                exit_after=exit_after,
                exit_code=exit_code,
                exit_image=verdict_image if exit_code else None,
            )
            self._live[handle.arn] = (task, cluster)
            arns.append(handle.arn)
        return arns

    def stop(self, task_arn: str, reason: str | None, now: float) -> bool:
        """StopTask; False if this is not a live standalone task."""
        live = self._live.get(task_arn)
        if live is None:
            return False
        self._lifecycle.stop_by_user(live[0], now, reason)
        return True

    def tick(self, now: float) -> list[ClusterRef]:
        """Advance every live task; returns the clusters whose task counts may have moved."""
        touched: dict[tuple[int, str], ClusterRef] = {}
        for arn, (task, cluster) in list(self._live.items()):
            self._lifecycle.advance(task, now)
            touched[cluster.key] = cluster
            if task.last_status == "STOPPED":
                del self._live[arn]
        return list(touched.values())

    def reset(self) -> None:
        self._live.clear()
