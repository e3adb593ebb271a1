"""ECS's own deployment records: service deployments.

ECS keeps a *service deployment* for every CreateService/UpdateService that starts a
deployment (ListServiceDeployments, DescribeServiceDeployments) and a *service revision*
for the configuration it deploys (DescribeServiceRevisions; ``model.ServiceRevision``, as a
deployment carries the revision it runs). They are how a client learns,
after the fact, whether ECS itself rolled a deployment back: a circuit-breaker rollback is
not a new service deployment but a state of the failed one (ROLLBACK_IN_PROGRESS, then
ROLLBACK_SUCCESSFUL or ROLLBACK_FAILED).

The emulator's mapping onto its own deployments (``ecs-svc/<digits>``):
- a revision per deployment started by a request, its id the deployment's digits; a rollback
  redeploys the revision of the last COMPLETED deployment;
- IN_PROGRESS while rolling; SUCCESSFUL once COMPLETED; STOPPED when a newer service
  deployment replaced it first, or when the circuit breaker trips without a rollback.

A record watches the scheduler's deployments (``model.py``); a deployment does not point
back at its record, which the service's ``ServiceRecord.service_deployment_of`` finds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .model import Deployment, failure_threshold, now_utc
from .wsgi_util import epoch_seconds, without_none

IN_PROGRESS, SUCCESSFUL, STOPPED = "IN_PROGRESS", "SUCCESSFUL", "STOPPED"
ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED = "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"
FINISHED = (SUCCESSFUL, STOPPED, ROLLBACK_SUCCESSFUL, ROLLBACK_FAILED)
SUPERSEDED_REASON = "A newer service deployment started before this one finished."


def revision_summary(deployment: Deployment) -> dict[str, Any]:
    """A revision and the tasks of the deployment running it, counted now."""
    assert deployment.revision is not None
    return {
        "arn": deployment.revision.arn,
        "requestedTaskCount": deployment.desired_count,
        "runningTaskCount": sum(t.running for t in deployment.tasks),
        "pendingTaskCount": sum(t.starting for t in deployment.tasks),
    }


@dataclass
class ServiceDeployment:
    """One service deployment; its status moves as the scheduler reports its deployments."""

    arn: str
    service_arn: str
    cluster_arn: str
    target: Deployment
    sources: list[Deployment]
    deployment_configuration: dict[str, Any]
    circuit_breaker: bool
    status: str = IN_PROGRESS
    status_reason: str | None = None
    created_at: datetime = field(default_factory=now_utc)
    updated_at: datetime = field(default_factory=now_utc)
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    rollback: Deployment | None = None
    rollback_reason: str | None = None
    rollback_started_at: datetime | None = None
    tripped: bool = False

    @classmethod
    def start(
        cls,
        service_arn: str,
        cluster_arn: str,
        target: Deployment,
        sources: list[Deployment],
        deployment_configuration: dict[str, Any],
        circuit_breaker: bool,
    ) -> ServiceDeployment:
        # ECS's ids are 22 URL-safe characters, e.g. r9i43YFjvgF_xlg7m2eJ1r.
        arn = service_arn.replace(":service/", ":service-deployment/", 1)
        record = cls(
            f"{arn}/{secrets.token_urlsafe(16)[:22]}",
            service_arn,
            cluster_arn,
            target,
            sources,
            deployment_configuration,
            circuit_breaker,
        )
        return record

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def superseded(self) -> None:
        self._finish(STOPPED, SUPERSEDED_REASON, stopped=True)

    def completed(self, deployment: Deployment) -> None:
        """The target, or the rollback, deployment reached COMPLETED."""
        if deployment is self.rollback:
            self._finish(ROLLBACK_SUCCESSFUL, self.status_reason)
        elif deployment is self.target:
            self._finish(SUCCESSFUL, None)

    def failed(self, deployment: Deployment, reason: str) -> None:
        """The circuit breaker tripped on the target (no rollback: STOPPED) or the rollback."""
        self.tripped = True
        if deployment is self.rollback:
            self._finish(ROLLBACK_FAILED, reason)
        else:
            self._finish(STOPPED, reason, stopped=True)

    def rolling_back(self, rollback: Deployment, reason: str, rollback_reason: str) -> None:
        self.tripped = True
        self.rollback, self.rollback_reason = rollback, rollback_reason
        self.rollback_started_at = now_utc()
        self.status, self.status_reason = ROLLBACK_IN_PROGRESS, reason
        self.updated_at = self.rollback_started_at

    def _finish(self, status: str, reason: str | None, stopped: bool = False) -> None:
        if self.finished:
            return
        self.status, self.status_reason = status, reason
        self.updated_at = self.finished_at = now_utc()
        if stopped:
            self.stopped_at = self.finished_at

    def brief(self) -> dict[str, Any]:
        """ListServiceDeployments' ServiceDeploymentBrief."""
        return without_none(
            {
                "serviceDeploymentArn": self.arn,
                "serviceArn": self.service_arn,
                "clusterArn": self.cluster_arn,
                "createdAt": epoch_seconds(self.created_at),
                "startedAt": epoch_seconds(self.created_at),
                "finishedAt": epoch_seconds(self.finished_at),
                "targetServiceRevisionArn": self._target_revision_arn(),
                "status": self.status,
                "statusReason": self.status_reason,
            }
        )

    def as_api(self) -> dict[str, Any]:
        """DescribeServiceDeployments' ServiceDeployment."""
        described = {
            **self.brief(),
            "updatedAt": epoch_seconds(self.updated_at),
            "stoppedAt": epoch_seconds(self.stopped_at),
            "sourceServiceRevisions": [revision_summary(d) for d in self.sources],
            "targetServiceRevision": revision_summary(self.target),
            "deploymentConfiguration": self.deployment_configuration,
            "deploymentCircuitBreaker": self._circuit_breaker(),
        }
        if self.rollback is not None and self.rollback.revision is not None:
            described["rollback"] = {
                "reason": self.rollback_reason,
                "startedAt": epoch_seconds(self.rollback_started_at),
                "serviceRevisionArn": self.rollback.revision.arn,
            }
        return without_none(described)

    def _target_revision_arn(self) -> str:
        assert self.target.revision is not None
        return self.target.revision.arn

    def _circuit_breaker(self) -> dict[str, Any]:
        if not self.circuit_breaker:
            status = "DISABLED"
        elif self.tripped:
            status = "TRIGGERED"
        else:
            status = "MONITORING_COMPLETE" if self.finished else "MONITORING"
        return {
            "status": status,
            "failureCount": self.target.failed_tasks,
            "threshold": failure_threshold(self.target.desired_count),
        }
