"""One model version's state as its events fold it, and the fold itself (ModelModule applies it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.registry import (
    EvaluationReport,
    ModelApproved,
    ModelDeprecated,
    ModelEvaluated,
    ModelEvaluationFailed,
    ModelEvaluationRequested,
    ModelRejected,
    ModelReleased,
    ModelVersionRegistered,
    ModelVersionRenumbered,
)
from modelyard_registry.domain.lifecycle import Status
from modelyard_registry.domain.semver import Lineage, SemVer


@dataclass(frozen=True)
class PendingEvaluation:
    """An evaluation asked of the queue and not yet finished."""

    evaluation_id: str
    job_id: str
    requested_by: str
    dataset_uri: str
    split: str


@dataclass(frozen=True)
class FinishedEvaluation:
    """The last evaluation that finished, and who asked for it (four eyes reads both)."""

    evaluation_id: str
    job_id: str
    requested_by: str
    report: EvaluationReport


@dataclass(frozen=True)
class VersionState:
    """One model version as its events say it is. `revision` counts the events about it."""

    registered: ModelVersionRegistered
    semantic_version: SemVer
    status: Status = "draft"
    status_reason: str = ""
    pending: PendingEvaluation | None = None
    evaluation: FinishedEvaluation | None = None
    approval: ModelApproved | None = None
    environments: frozenset[str] = frozenset()
    released_at: datetime | None = None
    release_notes: str = ""
    revision: int = 1
    registered_at: datetime | None = None  # when its registration was recorded (the envelope's time)

    @property
    def version_id(self) -> str:
        """The version's id."""
        return self.registered.version_id

    @property
    def label(self) -> str:
        """e.g. "digits 1.2.0" for messages."""
        return f"{self.registered.ai_module} {self.semantic_version}"

    def lineage(self) -> Lineage:
        """What the numbering rule compares."""
        config = self.registered.config
        return Lineage(
            input_schema_sha256=config.input_schema_sha256,
            class_names=None if config.class_names is None else tuple(config.class_names),
            dataset_uri=self.registered.dataset_uri,
        )


def evolve_version(
    v: VersionState, event: DomainEvent, current: dict[str, str], jobs: dict[str, str]
) -> tuple[VersionState, dict[str, str], dict[str, str]]:
    """The version after `event`, with the module's current releases and job index updated."""
    if isinstance(event, ModelVersionRenumbered):
        return replace(v, semantic_version=SemVer.parse(event.semantic_version)), current, jobs
    if isinstance(event, ModelEvaluationRequested):
        jobs[event.job_id] = v.version_id
        pending = PendingEvaluation(
            event.evaluation_id, event.job_id, event.requested_by, event.dataset_uri, event.split
        )
        return replace(v, status="testing", status_reason="", pending=pending), current, jobs
    if isinstance(event, ModelEvaluated) and v.pending is not None:
        finished = FinishedEvaluation(event.evaluation_id, event.job_id, v.pending.requested_by, event.report)
        return replace(v, pending=None, evaluation=finished), current, jobs
    if isinstance(event, ModelEvaluationFailed):
        return replace(v, status="draft", status_reason=event.reason, pending=None), current, jobs
    if isinstance(event, ModelApproved):
        return replace(v, status="approved", status_reason="", approval=event), current, jobs
    if isinstance(event, ModelRejected):
        return (
            replace(v, status="draft", status_reason=event.reason, approval=None, pending=None),
            current,
            jobs,
        )
    if isinstance(event, ModelReleased):
        current[event.environment] = v.version_id
        environments = v.environments | {event.environment}
        return (
            replace(
                v,
                status="released",
                environments=environments,
                released_at=event.released_at,
                release_notes=event.release_notes,
            ),
            current,
            jobs,
        )
    if isinstance(event, ModelDeprecated):
        for environment in [e for e, vid in current.items() if vid == v.version_id]:
            del current[environment]
        return (
            replace(v, status="deprecated", status_reason=event.reason, environments=frozenset()),
            current,
            jobs,
        )
    return v, current, jobs
