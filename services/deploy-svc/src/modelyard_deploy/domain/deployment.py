"""The Deployment aggregate: one (model version, edge server) install, folded from its stream.

pending → downloading → installing → completed | failed (| cancelled), retried with backoff. The
decisions are plain functions that take a Deployment and return the events to append (or raise a
DomainError); `apply` folds one event and never fails, so a stream accepted once always rebuilds.
The agent's reports are decided in `deployment_reports`; the operator's and the conductor's moves
(fail, retry, cancel) here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from modelyard_deploy.domain.backoff import retry_time
from modelyard_events.domain_errors import IllegalTransition, InvalidFields, NotFound
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.deploy import (
    DEPLOY_EVENTS,
    DeploymentCancelled,
    DeploymentCreated,
    DeploymentProgressed,
    DeploymentRetried,
    DeploymentStatus,
    HealthLimits,
    HealthReport,
    RolloutKind,
)

# What a rollout counts a deployment as: failed means final (no automatic retry pending).
Outcome = Literal["completed", "failed", "cancelled", "open"]
IN_PROGRESS: frozenset[DeploymentStatus] = frozenset({"pending", "downloading", "installing"})
CANCELLABLE: frozenset[DeploymentStatus] = IN_PROGRESS | {"failed"}


@dataclass(frozen=True)
class DeploymentSpec:
    """What a new deployment is: the fields of DeploymentCreated, checked by `create_deployment`."""

    deployment_id: str
    org_id: str
    server_id: str
    version_id: str
    ai_module: str
    semantic_version: str
    artifact_sha256: str
    artifact_size_bytes: int
    scheduled_at: datetime
    deadline_at: datetime
    max_retries: int
    backoff_base_s: float
    health: HealthLimits
    created_by: str
    previous_version_id: str | None = None
    rollout_id: str | None = None
    wave: int | None = None
    kind: RolloutKind = "deploy"
    reason: str = ""


@dataclass(frozen=True)
class Deployment:
    """One deployment as its events so far say it is.

    `attempt` starts at 1 and grows with each DeploymentRetried; `retry_at` is set only while a failure
    waits for its automatic retry; `stream_version` is the version to append at. Times come from the
    envelopes (`occurred_at`): `started_at` is the first move out of pending, `completed_at` the end
    (completed, final failure or cancel) of the latest attempt.
    """

    deployment_id: str
    org_id: str
    server_id: str
    version_id: str
    ai_module: str
    semantic_version: str
    artifact_sha256: str
    artifact_size_bytes: int
    previous_version_id: str | None
    rollout_id: str | None
    wave: int | None
    kind: RolloutKind
    scheduled_at: datetime
    deadline_at: datetime
    max_retries: int
    backoff_base_s: float
    health: HealthLimits
    created_by: str
    reason: str
    created_at: datetime
    status: DeploymentStatus = "pending"
    phase: str = ""
    progress_percent: int = 0
    attempt: int = 1
    retry_count: int = 0
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error_message: str = ""
    retry_at: datetime | None = None
    health_report: HealthReport | None = None
    updated_at: datetime | None = None
    stream_version: int = 1

    @classmethod
    def from_events(cls, envelopes: Iterable[EventEnvelope]) -> Deployment:
        """The deployment after its stored events in order; NotFound for an empty or foreign stream."""
        deployment: Deployment | None = None
        for envelope in envelopes:
            event = DEPLOY_EVENTS.decode(envelope)
            if deployment is None:
                if not isinstance(event, DeploymentCreated):
                    raise NotFound(f"deployment {envelope.stream_id} does not exist")
                deployment = cls.created(event, envelope.occurred_at)
            else:
                deployment = deployment.apply(event, envelope.occurred_at)
        if deployment is None:
            raise NotFound("deployment does not exist")
        return deployment

    @classmethod
    def created(cls, event: DeploymentCreated, at: datetime) -> Deployment:
        """The state right after DeploymentCreated."""
        fields = event.model_dump(exclude={"health"})
        return cls(**fields, health=event.health, created_at=at, updated_at=at)

    def apply(self, event: DomainEvent, at: datetime) -> Deployment:
        """The deployment after `event`, recorded at `at`."""
        version = self.stream_version + 1
        if isinstance(event, DeploymentProgressed):
            return self._progressed(event, at, version)
        if isinstance(event, DeploymentRetried):
            return replace(
                self,
                status="pending",
                phase="",
                progress_percent=0,
                attempt=event.attempt,
                retry_count=event.retry_count,
                deadline_at=event.deadline_at,
                completed_at=None,
                error_message="",
                retry_at=None,
                health_report=None,
                updated_at=at,
                stream_version=version,
            )
        if isinstance(event, DeploymentCancelled):
            return replace(
                self,
                status="cancelled",
                retry_at=None,
                completed_at=at,
                updated_at=at,
                stream_version=version,
            )
        return replace(self, stream_version=version)

    def apply_envelopes(self, envelopes: Iterable[EventEnvelope]) -> Deployment:
        """The deployment after events just recorded (as the store returned them)."""
        deployment = self
        for envelope in envelopes:
            deployment = deployment.apply(DEPLOY_EVENTS.decode(envelope), envelope.occurred_at)
        return deployment

    def _progressed(self, event: DeploymentProgressed, at: datetime, version: int) -> Deployment:
        ended = event.status == "completed" or (event.status == "failed" and event.retry_at is None)
        return replace(
            self,
            status=event.status,
            phase=event.phase,
            progress_percent=event.progress_percent,
            started_at=self.started_at or at,
            completed_at=at if ended else None,
            error_message=event.error_message,
            retry_at=event.retry_at,
            health_report=event.health or self.health_report,
            updated_at=at,
            stream_version=version,
        )

    @property
    def outcome(self) -> Outcome:
        """How a rollout counts it: failed only when final (no automatic retry waiting)."""
        if self.status == "completed" or self.status == "cancelled":
            return self.status
        if self.status == "failed" and self.retry_at is None:
            return "failed"
        return "open"

    def describe(self) -> str:
        """`deployment <id> of <module> <semver> to <server>` for messages."""
        return (
            f"deployment {self.deployment_id} of {self.ai_module} {self.semantic_version} to {self.server_id}"
        )


def create_deployment(spec: DeploymentSpec) -> list[DomainEvent]:
    """DeploymentCreated for a valid spec; InvalidFields naming every wrong field otherwise."""
    problems: dict[str, str] = {}
    if spec.deadline_at <= spec.scheduled_at:
        problems["deadline_at"] = "must be after scheduled_at"
    if not 0 <= spec.max_retries <= 100:
        problems["max_retries"] = f"must be between 0 and 100; got {spec.max_retries}"
    if spec.backoff_base_s <= 0:
        problems["backoff_base_s"] = f"must be positive; got {spec.backoff_base_s}"
    if problems:
        raise InvalidFields(problems)
    fields = {name: getattr(spec, name) for name in DeploymentSpec.__dataclass_fields__}
    return [DeploymentCreated(**fields)]


def fail(deployment: Deployment, reason: str, now: datetime, retryable: bool) -> list[DomainEvent]:
    """The conductor fails an unfinished deployment (deadline, silent agent); retried with backoff
    when `retryable` and retries and time are left."""
    if deployment.status not in IN_PROGRESS:
        raise IllegalTransition(
            f"{deployment.describe()} is {deployment.status}; only pending, downloading or installing "
            "deployments can be failed"
        )
    retry_at = retry_at_for_failure(deployment, now, retryable)
    return [
        DeploymentProgressed(
            deployment_id=deployment.deployment_id,
            server_id=deployment.server_id,
            attempt=deployment.attempt,
            status="failed",
            phase=deployment.phase,
            progress_percent=deployment.progress_percent,
            error_message=reason,
            retry_at=retry_at,
            reported_by="conductor",
        )
    ]


def retry(
    deployment: Deployment, automatic: bool, reason: str, now: datetime, deadline_s: float
) -> list[DomainEvent]:
    """A new attempt of a failed deployment.

    Automatic (the conductor's backoff): only when a retry is due (`retry_at` <= now), keeping the
    deadline. By an operator: any failed deployment, even with retries exhausted or past its deadline;
    the new attempt gets the deadline now + `deadline_s`.
    """
    if deployment.status != "failed":
        raise IllegalTransition(
            f"{deployment.describe()} is {deployment.status}; only failed deployments can be retried"
        )
    if automatic and (deployment.retry_at is None or deployment.retry_at > now):
        due = (
            "no automatic retry is due"
            if deployment.retry_at is None
            else f"its retry is due at {deployment.retry_at.isoformat()}"
        )
        raise IllegalTransition(f"{deployment.describe()} is failed and {due}")
    deadline_at = deployment.deadline_at if automatic else now + timedelta(seconds=deadline_s)
    return [
        DeploymentRetried(
            deployment_id=deployment.deployment_id,
            attempt=deployment.attempt + 1,
            retry_count=deployment.retry_count + 1,
            automatic=automatic,
            deadline_at=deadline_at,
            reason=reason,
        )
    ]


def cancel(deployment: Deployment, reason: str) -> list[DomainEvent]:
    """Cancel a deployment that has not completed: always possible, even while its agent is away (it
    learns of it on its next contact and keeps serving what it served)."""
    if deployment.status == "completed":
        raise IllegalTransition(
            f"{deployment.describe()} is completed; it cannot be cancelled: roll it back instead"
        )
    if deployment.status not in CANCELLABLE:
        raise IllegalTransition(
            f"{deployment.describe()} is {deployment.status}; only pending, downloading, installing or "
            "failed deployments can be cancelled"
        )
    return [
        DeploymentCancelled(
            deployment_id=deployment.deployment_id,
            server_id=deployment.server_id,
            previous_status=deployment.status,
            reason=reason,
        )
    ]


def retry_at_for_failure(deployment: Deployment, now: datetime, retryable: bool) -> datetime | None:
    """When a failure of the current attempt would be retried automatically (None: final)."""
    if not retryable:
        return None
    d = deployment
    return retry_time(d.deployment_id, d.backoff_base_s, d.retry_count, d.max_retries, d.deadline_at, now)
