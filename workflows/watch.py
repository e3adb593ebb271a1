"""The watch after the rollout (`rolling.watch_seconds`): a rollout that looked fine at 100 %
can still go bad ten minutes later, and the run still holds what the service was before it.

Once Rolling Deploy has reached steady state, the run watches the alarms
(`DeploymentRequest.watch_alarms`: by default the verification alarms) until the watch's time
is up. The main service counts as touched until then, so whatever ends the run meanwhile goes
through the one cleanup path (`EcsCanaryDeployment._end_early`, `workflows.cleanup`), which
rolls it back to the task definition, count and deployment configuration recorded before the
rollout: an alarm that fires (the run ends `rolled_back`, error type `AlarmFired` naming the
alarm), and a cancel (the run ends `cancelled`). A pause stops the watch's clock as it does the
bake's (`workflows.hold`): the watch ends that much later, and an alarm that fires while the
run is paused rolls back at the resume. Auto scaling is the service's own again
during the watch: a watch may last hours, and the service must follow its load.

The alarms are looked up before anything changes (`find_alarms`): a typo in an alarm the
verification does not watch would otherwise only show once the rollout is done, and roll back
a good one.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.alarms import AlarmActivities
    from ecs_canary.models import AlarmsInput, Stage
    from ecs_canary.text import duration_text
    from workflows.calls import settle
    from workflows.failures import StageFailure
    from workflows.run_part import RunPart
    from workflows.verification import watch_alarms

ALARM_FIRED = "AlarmFired"


class RolloutWatch(RunPart):
    """One run's watch after its rollout; a no-op for a request without one."""

    @property
    def planned(self) -> bool:
        """The request asks for a watch: the rolling deploy leaves the service to it."""
        return self._request.rolling.watch_seconds > 0

    async def find_alarms(self) -> None:
        """Before anything changes: every alarm the watch will watch exists (a failed run
        with `AlarmNotFound` otherwise)."""
        if not self.planned:
            return
        request = self._request
        alarms = request.watch_alarms
        await self._run.calls.call(
            AlarmActivities.find_alarms,
            AlarmsInput(region=request.region, alarms=alarms),
            summary=f"Find alarms {', '.join(alarms)} (watched after the rollout)",
        )

    async def run(self) -> None:
        """Watch the alarms for `rolling.watch_seconds`; `StageFailure` (`AlarmFired`) when
        one fires, and the service is no longer the cleanup path's to roll back when none
        did. A watch that cannot read its alarms fails the run as the verification's does."""
        if not self.planned:
            return
        request, state = self._request, self._state
        seconds, alarms = request.rolling.watch_seconds, request.watch_alarms
        self._run.enter(Stage.WATCH)
        state.watch_ends_at = workflow.now() + timedelta(seconds=seconds)
        workflow.logger.info(
            f"Watching alarms {', '.join(alarms)} for {duration_text(seconds)} after the rollout",
            extra=self._run.log_context(),
        )
        alarm_watch = watch_alarms(self._run, alarms)

        def postponed(pause: timedelta) -> None:
            if state.watch_ends_at is not None:
                state.watch_ends_at += pause

        hold = self._run.hold
        try:
            summary = f"Watch {duration_text(seconds)} after the rollout"
            if await hold.timer(seconds, summary, alarm_watch.done, postponed):
                workflow.logger.info("Watch ended with no alarm", extra=self._run.log_context())
            else:
                # A paused run decides nothing by itself: the rollback waits for the resume.
                await hold.before_next_step()
                firing = alarm_watch.result()
                raise StageFailure(
                    Stage.WATCH,
                    f"alarm {firing.name} went into ALARM after the rollout: {firing.reason}",
                    ALARM_FIRED,
                )
        finally:
            state.watch_ends_at = None
            if not alarm_watch.done():
                alarm_watch.cancel()
                await settle(alarm_watch)
        state.main_service_touched = False
