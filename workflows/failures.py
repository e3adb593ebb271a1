"""What ended a stage, in the words a failed run reports: a stage's own verdict
(`StageFailure`) and what really went wrong under Temporal's activity error
(`failure_reason`)."""

from __future__ import annotations

from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError

from ecs_canary.models import Stage

# The failure types of a rollout that was rolled back: by the workflow, or by ECS itself.
ROLLED_BACK_BY_ECS = "DeploymentRolledBack"
ROLLED_BACK = frozenset({"RolledBack", ROLLED_BACK_BY_ECS})


class StageFailure(Exception):
    """A stage failed; carries the stage and the reason in ECS's words."""

    def __init__(self, stage: Stage, reason: str, failure_type: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.failure_type = failure_type

    @classmethod
    def of(cls, err: BaseException, stage: Stage) -> StageFailure:
        """What ended `stage`, in the words a failed run reports."""
        if isinstance(err, StageFailure):
            return err
        kind, reason = failure_reason(err)
        return cls(stage, reason, kind)

    def rolled_back(self, to_previous: bool) -> StageFailure:
        """The rollout's failure once the rollback went through: `RolledBack` when the service
        is back on its previous task definition (a first deployment's is removed instead), or
        `DeploymentRolledBack` when ECS had rolled it back first (the workflow then only puts
        back the recorded count and configuration). The watch after the rollout keeps its own
        (`AlarmFired`): the rollout had succeeded, and the alarm is why it was taken back."""
        if self.stage == Stage.WATCH:
            return self
        rolled_back_by_ecs = self.failure_type == ROLLED_BACK_BY_ECS
        kind = "RolledBack" if to_previous and not rolled_back_by_ecs else self.failure_type
        return StageFailure(Stage.ROLLING_DEPLOY, self.reason, kind)

    @property
    def ends_rolled_back(self) -> bool:
        """The run ends `rolled_back`: the rollout was taken back, by the workflow or by ECS,
        or the watch after it had the service put back (a failed rollback is `RollbackFailed`,
        of the rollback stage)."""
        return self.failure_type in ROLLED_BACK or self.stage == Stage.WATCH

    def noting(self, note: str) -> StageFailure:
        """The same failure, with what the cleanup could not do appended to its reason."""
        return StageFailure(self.stage, f"{self.reason}; {note}", self.failure_type)



def failure_reason(err: BaseException) -> tuple[str, str]:
    """(type, message) of what really went wrong, unwrapped from Temporal's activity error:
    the run's failure names AWS's code or the wait's verdict, not "ActivityError"."""
    cause = err.cause if isinstance(err, ActivityError) and err.cause else err
    if isinstance(cause, ApplicationError):
        return cause.type or "ApplicationError", cause.message
    if isinstance(cause, TimeoutError):
        return "Timeout", f"timed out ({cause.type.name if cause.type else 'timeout'})"
    return type(cause).__name__, str(cause)
