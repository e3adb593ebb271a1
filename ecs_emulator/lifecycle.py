"""One task's life, by wall-clock deadlines: shared by service tasks and standalone tasks.

ECS moves a task PROVISIONING -> PENDING -> RUNNING, and on the way out DEACTIVATING ->
STOPPING -> (DEPROVISIONING ->) STOPPED, whoever started it. The service scheduler and the
standalone (RunTask) tasks differ only in what they do around that, so the state machine
lives here once and both drive it from their tick.
"""

from __future__ import annotations

from .faults import CRASH_REASON, cannot_pull_reason
from .model import EmulatedTask, now_utc
from .moto_internals import TaskHandle
from .settings import EmulatorSettings

SLOW_FACTOR = 10
USER_STOP_REASON = "Task stopped by user"
# StopTask is `docker stop`: SIGTERM, then SIGKILL after the stop timeout. A container killed
# by SIGKILL exits 128 + 9; one that handles SIGTERM itself often exits 128 + 15 = 143.
# Test runners rarely handle SIGTERM, so the emulator reports the SIGKILL code.
SIGKILL_EXIT_CODE = 137


class TaskLifecycle:
    """Launches, advances and stops emulated tasks; every method runs under the emulator lock.

    Reads the delays from ``settings`` when a task changes state, so admin changes to
    ``task_start_seconds``/``task_stop_seconds`` apply to the next transition.
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings

    def launch(
        self,
        handle: TaskHandle,
        now: float,
        fault: str | None = None,
        fault_image: str = "",
        exit_after: float | None = None,
        exit_code: int = 0,
        exit_image: str | None = None,
    ) -> EmulatedTask:
        """A new task in PROVISIONING; a ``slow`` fault makes it take ten times the delay."""
        start = self.settings.task_start_seconds
        if fault == "slow":
            start *= SLOW_FACTOR
        handle.set_times(created_at=now_utc())
        handle.set_status("PROVISIONING", "RUNNING")
        return EmulatedTask(
            handle=handle,
            fault=fault,
            fault_image=fault_image,
            ready_at=now + start,
            provisioned_at=now + start / 4,
            exit_after=exit_after,
            exit_code=exit_code,
            exit_image=exit_image,
        )

    def advance(self, task: EmulatedTask, now: float) -> bool:
        """Apply every transition that is due; True if the task failed in this step (it never
        started, or its essential container exited non-zero), which services count."""
        failed = False
        if task.last_status == "PROVISIONING" and now >= task.provisioned_at:
            self._set_status(task, "PENDING")
        if task.last_status == "PENDING" and now >= task.ready_at:
            if task.fault == "nopull":
                reason = cannot_pull_reason(task.fault_image)
                self.begin_stop(task, now, reason, "TaskFailedToStart", None)
                failed = True
            else:
                self._start(task, now)
        if task.last_status == "RUNNING" and task.exit_at is not None and now >= task.exit_at:
            self.begin_stop(
                task,
                now,
                CRASH_REASON,
                "EssentialContainerExited",
                task.exit_code,
                task.exit_image,
            )
            failed = task.exit_code != 0
        if task.stopping_at is not None and task.stopped_at is not None:
            if now >= task.stopped_at:
                self._set_status(task, "STOPPED")
                task.handle.set_times(stopped_at=now_utc(), execution_stopped_at=now_utc())
            elif (
                task.last_status == "DEACTIVATING"
                and now >= (task.stopping_at + task.stopped_at) / 2
            ):
                self._set_status(task, "STOPPING")
        return failed

    def begin_stop(
        self,
        task: EmulatedTask,
        now: float,
        reason: str,
        stop_code: str = "ServiceSchedulerInitiated",
        exit_code: int | None = 0,
        exit_image: str | None = None,
        drain_seconds: float = 0.0,
    ) -> None:
        """desiredStatus STOPPED now, lastStatus STOPPED after the stop delay. A task whose
        targets drain first (``drain_seconds``) stays DEACTIVATING that much longer: ECS
        deregisters a task from its target groups before it stops the containers."""
        task.desired_status = "STOPPED"
        task.stopping_at = now + drain_seconds
        task.stopped_at = task.stopping_at + self.settings.task_stop_seconds
        task.handle.set_times(stopping_at=now_utc())
        task.handle.set_stopped(reason, stop_code, exit_code, exit_image)
        self._set_status(task, "DEACTIVATING")

    def stop_by_user(
        self, task: EmulatedTask, now: float, reason: str | None, drain_seconds: float = 0.0
    ) -> None:
        """StopTask: a no-op for a task already on its way out, as in ECS."""
        if task.desired_status == "STOPPED":
            return
        # Containers that never started have no exit code; started ones were killed.
        exit_code = SIGKILL_EXIT_CODE if task.last_status == "RUNNING" else None
        self.begin_stop(
            task,
            now,
            reason or USER_STOP_REASON,
            "UserInitiated",
            exit_code,
            drain_seconds=drain_seconds,
        )

    def _start(self, task: EmulatedTask, now: float) -> None:
        """RUNNING; a crashing or standalone task also learns when it will exit."""
        self._set_status(task, "RUNNING")
        task.handle.set_times(started_at=now_utc(), connectivity_at=now_utc())
        if task.fault == "crash":
            start = self.settings.task_start_seconds
            task.exit_at = now + max(start, self.settings.tick_seconds)
            task.exit_code, task.exit_image = 1, task.fault_image
        elif task.exit_after is not None:
            task.exit_at = now + task.exit_after

    def _set_status(self, task: EmulatedTask, last_status: str) -> None:
        task.last_status = last_status
        task.handle.set_status(last_status, task.desired_status)
