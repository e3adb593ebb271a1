"""Canary analysis as the workflow runs it: the intervals, back to back, beside the bake, the
alarms and the verification steps (the statistics: `ecs_canary.judge`).

The intervals start when Verification does (canary and baseline steady, the weighted traffic
in force) and tile time without gaps: interval i covers [t0 + (i-1)·d, t0 + i·d), each a
durable timer, then one activity that reads its metrics and judges them while the next
interval's timer already runs. `status.analysis` is updated after each.

- An interval judged `fail` rejects the canary at once (`via: analysis`), like a failed step
  or an alarm; the reason names the score and the metrics that did not pass.
- After the last interval its verdict is the analysis's: `pass` lets the gate open (or, with
  `require_approval: false`, approve by itself); `marginal` goes to `on_marginal`: a person
  decides at the gate (`gate`), or it rejects (`reject`).
- An interval that cannot be judged (CloudWatch refuses, say) fails the analysis and rejects:
  nothing has been rolled out, and nobody can vouch for an unread canary.
- A rejection from anywhere else, or a cancel, stops the analysis (`stopped`): its timer and
  any activity in flight are cancelled.
- A pause (workflows.hold) stops the interval's timer: the interval ends later by the time
  paused (and covers it), the next one starts where it ended, and no verdict rejects or
  concludes until the run is resumed.

Approvals sent while the analysis runs are refused and recorded, as during the bake: the gate
is `analysing` until the last interval is judged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.analysis import AnalysisActivities
    from ecs_canary.analysis import AnalysisInterval, AnalysisSettings, AnalysisStatus
    from ecs_canary.analysis_queries import JudgeIntervalInput, placeholder_values
    from ecs_canary.analysis_text import failing_metrics, interval_verdict_text
    from ecs_canary.gate import Gate
    from ecs_canary.models import DeploymentRequest
    from workflows.calls import LOCAL_ACTIVITY_FAILED, judge_interval, plain_cancel
    from workflows.failures import failure_reason
    from workflows.run_part import RunPart

# Who a judge's rejection is by.
JUDGE = "analysis"


class _Unjudged(Exception):
    """An interval the activity could not judge; the text says why."""


def _reject(gate: Gate, reason: str) -> None:
    """The judge rejects, unless something decided the canary first (a person's rejection
    taken in the same workflow task as the interval's judgement, say)."""
    if gate.decision is None:
        gate.decide_automatically("reject", "analysis", reason, workflow.now(), by=JUDGE)


def pending_analysis(request: DeploymentRequest) -> AnalysisStatus | None:
    """`status.analysis` before the first interval; None without `verification.analysis`."""
    settings, baseline = request.verification.analysis, request.baseline_service_name
    if settings is None or baseline is None:
        return None
    return AnalysisStatus(
        period_seconds=settings.period_seconds,
        intervals_planned=settings.intervals,
        baseline_service=baseline,
    )


class CanaryAnalysis(RunPart):
    """Runs a deployment's analysis intervals and keeps `status.analysis` (in the run's state)
    current."""

    @property
    def _settings(self) -> AnalysisSettings:
        settings = self._request.verification.analysis
        assert settings is not None, "run only with verification.analysis"
        return settings

    @property
    def _status(self) -> AnalysisStatus:
        status = self._state.analysis
        assert status is not None, "set from the request when the run starts"
        return status

    @property
    def needs_a_person(self) -> bool:
        """The analysis ended marginal and `on_marginal` leaves it to the gate."""
        return self._status.state == "marginal" and self._settings.on_marginal == "gate"

    async def run(self, gate: Gate) -> None:
        """Every interval in turn, unless one fails (which rejects) or the canary is decided
        or the run cancelled first (which stops it)."""
        settings, status = self._settings, self._status
        length = timedelta(seconds=settings.interval_seconds)
        started = workflow.now()
        status.state = "running"
        try:
            for index in range(1, settings.intervals + 1):
                interval = await self._judge(index, started, started + length)
                started = interval.ended_at
                status.intervals.append(interval)
                status.score, status.verdict = interval.score, interval.verdict
                await self._run.hold.before_next_step()  # paused: no verdict of its own
                if interval.verdict == "fail":
                    status.state = "failed"
                    _reject(gate, f"canary analysis {self._verdict_text(interval)}")
                    return
            self._conclude(gate)
        except _Unjudged as unjudged:
            await self._run.hold.before_next_step()
            status.state = "failed"
            _reject(gate, str(unjudged))
        except asyncio.CancelledError:
            status.state = "stopped"
            raise

    def _conclude(self, gate: Gate) -> None:
        """The last interval's verdict is the analysis's."""
        status, last = self._status, self._status.intervals[-1]
        if last.verdict == "pass":
            status.state = "passed"
            return
        status.state = "marginal"
        if self._settings.on_marginal == "reject":
            _reject(
                gate,
                f"canary analysis ended marginal ({self._verdict_text(last)}); on_marginal: reject",
            )

    def _verdict_text(self, interval: AnalysisInterval) -> str:
        """`interval 2 of 3: score 33, fail (marginal_score 75); not passing: ...`."""
        settings = self._settings
        threshold = (
            f"marginal_score {settings.marginal_score:g}"
            if interval.verdict == "fail"
            else f"pass_score {settings.pass_score:g}"
        )
        return (
            f"{interval_verdict_text(interval, settings.intervals)} ({threshold}); "
            f"not passing: {failing_metrics(interval)}"
        )

    async def _judge(self, index: int, started: datetime, ended: datetime) -> AnalysisInterval:
        """Wait for the interval to end, then read and judge it. A pause stops the interval's
        timer: the interval ends that much later, and covers the time paused too."""
        planned = self._settings.intervals
        remaining = (ended - workflow.now()).total_seconds()

        def stretch(paused: timedelta) -> None:
            nonlocal ended
            ended += paused

        if remaining > 0:
            summary = f"Analysis interval {index} of {planned}"
            await self._run.hold.timer(remaining, summary, postponed=stretch)
        await self._run.hold.before_next_step()
        try:
            judgement = await plain_cancel(
                workflow.execute_local_activity_method(
                    AnalysisActivities.judge_interval,
                    self._input(index, started, ended),
                    **judge_interval(f"Judge analysis interval {index} of {planned}"),
                )
            )
        except LOCAL_ACTIVITY_FAILED as err:
            raise _Unjudged(
                f"canary analysis interval {index} of {planned} could not be judged: "
                f"{failure_reason(err)[1]}"
            ) from err
        return AnalysisInterval(
            index=index, started_at=started, ended_at=ended, **judgement.model_dump()
        )

    def _input(self, index: int, started: datetime, ended: datetime) -> JudgeIntervalInput:
        request, settings = self._request, self._settings
        traffic = request.canary.traffic
        rule = traffic.listener_rule_arn if traffic is not None else None
        return JudgeIntervalInput(
            region=request.region,
            cluster=request.cluster,
            service=request.service_name,
            settings=settings,
            canary=placeholder_values(
                request.canary_service_name,
                request.cluster,
                traffic.canary_target_group_arn if traffic is not None else None,
                rule,
            ),
            baseline=placeholder_values(
                self._status.baseline_service,
                request.cluster,
                settings.baseline_target_group_arn,
                rule,
            ),
            index=index,
            started_at=started,
            ended_at=ended,
        )
