"""The `run_task` verification step: a test suite as one-off ECS tasks in the deployment's
cluster (Harness's ECS Run Task), followed until every task stopped.

Safe to run again: the tasks carry `startedBy` = the step's token, and an attempt that finds
tasks with it follows them instead of starting more; a task definition the step registers is
tagged with the same token and found again instead of registered twice.
"""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError, CancelledError

from activities.aws import AwsClients, aws_errors, latest_tagged_revision
from activities.cancellation import cleaning_up
from activities.deployment_tasks import described_tasks, task_arns
from activities.polling import activity_logger
from activities.steps.common import StepClock, plural, restored_details, timed_out
from ecs_canary.steps import RunTaskStepInput, StepVerdict

# Tag on a task definition a step registers: the step's startedBy token.
STEP_TAG = "ecs-canary:step"
# ECS refuses a longer startedBy.
MAX_STARTED_BY = 128
# RunTask's keys a step's tasks take from the service definition.
SERVICE_KEYS = ("networkConfiguration", "launchType", "capacityProviderStrategy", "platformVersion")


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def essential_containers(task_definition: dict[str, Any]) -> set[str]:
    return {
        c["name"]
        for c in task_definition.get("containerDefinitions", [])
        if c.get("essential", True)
    }


def failing_container(task: dict[str, Any], essential: set[str]) -> tuple[str, int | None] | None:
    """The first essential container of a stopped task that did not exit 0 (name, exit code or
    None), or None when all did. A container the task definition does not name is essential."""
    for container in task.get("containers", []):
        name = container.get("name", "?")
        if essential and name not in essential:
            continue
        if (code := container.get("exitCode")) != 0:
            return name, code
    return None


def exit_text(failing: tuple[str, int | None] | None) -> str:
    if failing is None:
        return "exit code 0"
    return "no exit code" if failing[1] is None else f"exit code {failing[1]}"


def failure_text(task: dict[str, Any], failing: tuple[str, int | None]) -> str:
    """`task 0a1b...: container web exited with code 1 (Essential container in task exited)`."""
    name, code = failing
    what = "has no exit code" if code is None else f"exited with code {code}"
    reason = task.get("stoppedReason")
    return f"task {task_id(task['taskArn'])}: container {name} {what}" + (
        f" ({reason})" if reason else ""
    )


class RunTaskStep:
    def __init__(self, clients: AwsClients, request: RunTaskStepInput) -> None:
        self.request = request
        self.step = request.step
        self.client = clients.ecs(request.region)
        self.log = activity_logger().bind(
            cluster=request.cluster, step=self.step.name, started_by=request.started_by
        )
        self.clock = StepClock(self.step.timeout_seconds)
        # Tasks whose stop was logged (by this attempt or, through the heartbeats, an earlier).
        self.reported: list[str] = list(restored_details().get("reported", []))

    def run(self) -> StepVerdict:
        if len(self.request.started_by) > MAX_STARTED_BY:
            raise ApplicationError(
                f"startedBy {self.request.started_by!r} is longer than {MAX_STARTED_BY} characters",
                type="InvalidRequest",
                non_retryable=True,
            )
        # Cancellation is taken where the step waits (activities.cancellation), never between
        # a RunTask and the bookkeeping after it, nor during the clean-up.
        verdict = self._run_and_clean_up()
        self.log.info(f"Verification step {self.step.name}: {verdict.summary}")
        return verdict

    def _run_and_clean_up(self) -> StepVerdict:
        try:
            arns, definition_arn = self._find_or_start()
            verdict = self._follow(arns, definition_arn)
        except CancelledError:
            self.log.info(f"Verification step {self.step.name} was cancelled")
            self._stop_all(must_succeed=False)
            raise
        if verdict is None:
            self._stop_all(must_succeed=True)
            return timed_out(self.step.timeout_seconds)
        return verdict

    # --- starting ---------------------------------------------------------------------------

    def _find_or_start(self) -> tuple[list[str], str]:
        """The step's tasks (found again, or started now) and their task definition."""
        found = self._list_tasks("RUNNING") + self._list_tasks("STOPPED")
        if found:
            tasks = self._describe(found)
            definition_arn = tasks[0]["taskDefinitionArn"] if tasks else ""
            created = [t["createdAt"].timestamp() for t in tasks if t.get("createdAt")]
            if created:
                self.clock.restart_from(min(created))
            self.log.info(
                f"Following task {self.step.name} ({plural(len(found), 'task')}) "
                f"with task definition {definition_arn}"
            )
            return found, definition_arn
        definition_arn = self._task_definition()
        self.clock.check_cancelled()
        arns = self._run_task(definition_arn)
        self.log.info(
            f"Running task {self.step.name} ({plural(len(arns), 'task')}) "
            f"with task definition {definition_arn}"
        )
        return arns, definition_arn

    def _list_tasks(self, desired_status: str) -> list[str]:
        return task_arns(self.client, self.request.cluster, self.request.started_by, desired_status)

    def _task_definition(self) -> str:
        wanted = self.step.task_definition
        if wanted is None:
            return self.request.canary_task_definition_arn
        if isinstance(wanted, str):
            return wanted
        return self._register(wanted)

    def _register(self, task_definition: dict[str, Any]) -> str:
        """Register the step's own task definition once: the family's latest revision tagged
        with this step's token is the one an earlier attempt registered."""
        family = task_definition["family"]
        previous = self._latest_revision_of_step(family)
        if previous is not None:
            self.log.info(
                f"Task Definition {family} was already registered for verification step "
                f"{self.step.name} with Arn {previous}"
            )
            return previous
        self.log.info(f"Creating Task Definition with family {family}")
        tags = [
            *task_definition.get("tags", []),
            *({"key": k, "value": v} for k, v in self.request.tags.items() if k != STEP_TAG),
            {"key": STEP_TAG, "value": self.request.started_by},
        ]
        with aws_errors("RegisterTaskDefinition"):
            registered = self.client.register_task_definition(**{**task_definition, "tags": tags})
        revision = registered["taskDefinition"]
        arn: str = revision["taskDefinitionArn"]
        self.log.info(f"Created Task Definition {family}:{revision['revision']} with Arn {arn}..")
        return arn

    def _latest_revision_of_step(self, family: str) -> str | None:
        revision = latest_tagged_revision(self.client, family, STEP_TAG, self.request.started_by)
        return None if revision is None else str(revision["taskDefinitionArn"])

    def _run_task(self, definition_arn: str) -> list[str]:
        service = self.request.service_definition
        extra = {key: service[key] for key in SERVICE_KEYS if service.get(key) is not None}
        if self.step.overrides:
            extra["overrides"] = self.step.overrides
        with aws_errors("RunTask"):
            response = self.client.run_task(
                cluster=self.request.cluster,
                taskDefinition=definition_arn,
                count=self.step.count,
                startedBy=self.request.started_by,
                **extra,
            )
        arns = [t["taskArn"] for t in response.get("tasks", [])]
        if failures := response.get("failures"):
            if arns:  # a partial start: none of it may outlive the step
                self._stop_all(must_succeed=False)
            reasons = "; ".join(
                f"{f.get('arn', '')} {f.get('reason', '')} {f.get('detail', '')}".strip()
                for f in failures
            )
            raise ApplicationError(
                f"RunTask for verification step {self.step.name} failed: {reasons}",
                type="RunTaskFailed",
                non_retryable=True,
            )
        return arns

    # --- following --------------------------------------------------------------------------

    def _describe(self, arns: list[str]) -> list[dict[str, Any]]:
        return described_tasks(self.client, self.request.cluster, arns)

    def _essential(self, definition_arn: str) -> set[str]:
        with aws_errors("DescribeTaskDefinition"):
            described = self.client.describe_task_definition(taskDefinition=definition_arn)
        return essential_containers(described["taskDefinition"])

    def _follow(self, arns: list[str], definition_arn: str) -> StepVerdict | None:
        """Poll until every task stopped and judge them; None once the step's time is up."""
        essential = self._essential(definition_arn)
        while True:
            tasks = {t["taskArn"]: t for t in self._describe(arns)}
            for arn in arns:
                task = tasks.get(arn)
                if task and task.get("lastStatus") == "STOPPED" and arn not in self.reported:
                    failing = failing_container(task, essential)
                    self.log.info(
                        f"Task {task_id(arn)} stopped: {exit_text(failing)}",
                        container=failing[0] if failing else None,
                        stopped_reason=task.get("stoppedReason"),
                    )
                    self.reported.append(arn)
            if all(t.get("lastStatus") == "STOPPED" for t in tasks.values()):
                return self._verdict(arns, tasks, essential)
            if self.clock.expired:
                return None
            self.clock.beat(reported=list(self.reported))
            self.clock.sleep(self.request.poll_interval_seconds)

    def _verdict(
        self, arns: list[str], tasks: dict[str, dict[str, Any]], essential: set[str]
    ) -> StepVerdict:
        failures = []
        for arn in arns:
            task = tasks.get(arn)
            if task is None:  # ECS forgets stopped tasks after a while
                failures.append(f"task {task_id(arn)}: not found in ECS")
                continue
            if (failing := failing_container(task, essential)) is not None:
                failures.append(failure_text(task, failing))
        if not failures:
            return StepVerdict(
                passed=True, summary=f"{plural(len(arns), 'task')} passed (exit code 0)"
            )
        prefix = f"{len(failures)} of {len(arns)} tasks failed: " if len(arns) > 1 else ""
        return StepVerdict(passed=False, summary=prefix + "; ".join(failures))

    # --- clean-up ---------------------------------------------------------------------------

    def _stop_all(self, must_succeed: bool) -> None:
        """StopTask every task of the step still running (found by startedBy, so a task that
        started just before a cancellation is stopped too), cancelled or not."""
        with cleaning_up():
            self._stop_running(must_succeed)

    def _stop_running(self, must_succeed: bool) -> None:
        reason = f"ecs-canary: verification step {self.step.name} was stopped"
        try:
            running = self._list_tasks("RUNNING")
        except ApplicationError:
            if must_succeed:
                raise
            self.log.warning(f"Could not list the tasks of verification step {self.step.name}")
            return
        for arn in running:
            try:
                with aws_errors("StopTask"):
                    self.client.stop_task(cluster=self.request.cluster, task=arn, reason=reason)
            except ApplicationError as err:
                if must_succeed:
                    raise
                self.log.warning(f"Could not stop task {task_id(arn)}: {err}")
                continue
            self.log.info(f"Stopped task {task_id(arn)} of verification step {self.step.name}")
