"""The ModelModule aggregate: every version of one AI module, folded from the module's stream.

Commands check the rules and return the events to append (or raise a DomainError); `apply` folds
an event and never fails. Keeping a module's versions in one stream makes its cross-version rules
(numbers never reused, one current release per environment, the active-version limit, rollback as
one decision) hold with a single expected-version append.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from modelyard_events.domain_errors import (
    IllegalTransition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.registry import (
    MAX_ENVIRONMENTS,
    RELEASE_NOTES_MAX_CHARS,
    EvaluationReport,
    GateResult,
    ModelApproved,
    ModelDeprecated,
    ModelEvaluated,
    ModelEvaluationFailed,
    ModelEvaluationRequested,
    ModelRejected,
    ModelReleased,
    ModelVersionRegistered,
    ModelVersionRenumbered,
    SignedArtifactManifest,
)
from modelyard_registry.domain.gates import check_gates
from modelyard_registry.domain.lifecycle import Move, check_move
from modelyard_registry.domain.semver import SemVer, next_version
from modelyard_registry.domain.version_state import (
    VersionState,
    evolve_version,
)

_ENVIRONMENT = re.compile(r"[a-z][a-z0-9-]{0,31}")
DEFAULT_ENVIRONMENT = "production"
MAX_RENUMBER_PART = 99_999_999  # leaves every later bump within what SemVer.parse reads back
ManifestSigning = Callable[["VersionState", str, datetime], SignedArtifactManifest]
"""(version, approver, approved_at) → the signed manifest (the app layer holds the key)."""


@dataclass(frozen=True)
class Registration:
    """A completed training job's facts, with the artifact already copied into the registry's store."""

    version_id: str
    org_id: str
    ai_module: str
    name: str
    description: str
    training_job_id: str
    base_version_id: str | None
    created_by: str
    artifact_uri: str
    artifact_sha256: str
    artifact_size_bytes: int
    config: object  # ModelConfig; typed loosely so tests may build it from a dict
    training_metrics: dict[str, float]
    dataset_uri: str
    dataset_manifest_sha256: str | None
    min_edge_version: str
    supported_platforms: list[str]


@dataclass(frozen=True)
class ModelModule:
    """All versions of (org_id, ai_module); `version` is the stream's version."""

    org_id: str
    ai_module: str
    versions: dict[str, VersionState] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)  # environment → released version id
    jobs: dict[str, str] = field(default_factory=dict)  # training or evaluation job id → version id
    version: int = 0

    @classmethod
    def rebuild(cls, org_id: str, ai_module: str, events: Iterable[DomainEvent]) -> ModelModule:
        """The module after `events`, in order."""
        module = cls(org_id, ai_module)
        for event in events:
            module = module.apply(event)
        return module

    # ---- reads -------------------------------------------------------------------------------

    def get(self, version_id: str) -> VersionState:
        """The version, or NotFound."""
        found = self.versions.get(version_id)
        if found is None:
            raise NotFound(f"model version {version_id} does not exist in module {self.ai_module}")
        return found

    def by_number(self, semantic_version: str) -> VersionState | None:
        """The version numbered `semantic_version`, if any."""
        number = SemVer.parse(semantic_version)
        return next((v for v in self.versions.values() if v.semantic_version == number), None)

    def active(self) -> list[VersionState]:
        """Released and not deprecated (what the plan's active-version limit counts)."""
        return [v for v in self.versions.values() if v.status == "released"]

    def with_registration_times(self, times: dict[str, datetime]) -> ModelModule:
        """The module with each version's registration time (events carry no clock of their own)."""
        versions = {vid: replace(v, registered_at=times.get(vid)) for vid, v in self.versions.items()}
        return replace(self, versions=versions)

    def highest(self) -> VersionState | None:
        """The version with the highest number."""
        return max(self.versions.values(), key=lambda v: v.semantic_version, default=None)

    # ---- commands ----------------------------------------------------------------------------

    def register(self, new: Registration) -> list[DomainEvent]:
        """ModelVersionRegistered numbered by the rule; nothing when the job is already registered."""
        if new.training_job_id in self.jobs or new.version_id in self.versions:
            return []
        event = ModelVersionRegistered.model_validate(
            {
                **{k: getattr(new, k) for k in Registration.__dataclass_fields__ if k != "config"},
                "config": new.config,
                "semantic_version": "0.0.0",
                "bump": None,
                "bump_reason": "",
            }
        )
        provisional = VersionState(event, SemVer(0, 0, 0))
        top = self.highest()
        number, bump, why = next_version(
            None if top is None else (top.semantic_version, top.lineage()), provisional.lineage()
        )
        return [event.model_copy(update={"semantic_version": str(number), "bump": bump, "bump_reason": why})]

    def renumber(self, version_id: str, text: str, reason: str) -> list[DomainEvent]:
        """Set a draft version's number explicitly; it must be above every number in the module."""
        version = self._for(version_id, "renumber")
        number = SemVer.parse(text)
        if max(number.major, number.minor, number.patch) > MAX_RENUMBER_PART:
            raise InvalidArgument(
                "semantic_version", f"each part of an explicit number is at most {MAX_RENUMBER_PART:,}"
            )
        _require_reason(reason)
        top = max(v.semantic_version for v in self.versions.values())
        if number <= top:
            raise InvalidArgument(
                "semantic_version",
                f"{number} is not above {top}, the highest number in module {self.ai_module}; "
                "numbers are never reused, so choose a higher one",
            )
        return [
            ModelVersionRenumbered(
                version_id=version_id,
                semantic_version=str(number),
                previous=str(version.semantic_version),
                reason=reason,
            )
        ]

    def request_evaluation(
        self, version_id: str, evaluation_id: str, job_id: str, dataset_uri: str, split: str, by: str
    ) -> list[DomainEvent]:
        """draft → testing: the evaluation job is asked of the queue."""
        version = self._for(version_id, "evaluate")
        if dataset_uri == "":
            raise InvalidArgument("dataset_uri", "name the dataset version to evaluate on")
        return [
            ModelEvaluationRequested(
                version_id=version_id,
                org_id=self.org_id,
                ai_module=self.ai_module,
                semantic_version=str(version.semantic_version),
                family=version.registered.config.family,
                artifact_sha256=version.registered.artifact_sha256,
                artifact_size_bytes=version.registered.artifact_size_bytes,
                evaluation_id=evaluation_id,
                job_id=job_id,
                dataset_uri=dataset_uri,
                split=split,
                requested_by=by,
            )
        ]

    def record_evaluation(self, job_id: str, report: EvaluationReport) -> list[DomainEvent]:
        """ModelEvaluated for the pending evaluation run `job_id`; nothing for an unknown or old run."""
        version = self._pending_for(job_id)
        if version is None or version.pending is None:
            return []
        pending = version.pending
        if (report.dataset_uri, report.split) != (pending.dataset_uri, pending.split):
            measured = f"{report.dataset_uri} ({report.split})"
            asked = f"{pending.dataset_uri} ({pending.split})"
            return self.record_evaluation_failure(
                job_id, f"the run measured {measured}, not {asked} as asked"
            )
        return [
            ModelEvaluated(
                version_id=version.version_id,
                evaluation_id=pending.evaluation_id,
                job_id=job_id,
                report=report,
            )
        ]

    def record_evaluation_failure(self, job_id: str, reason: str) -> list[DomainEvent]:
        """testing → draft with the reason; nothing for an unknown or finished run."""
        version = self._pending_for(job_id)
        if version is None or version.pending is None:
            return []
        return [
            ModelEvaluationFailed(
                version_id=version.version_id,
                evaluation_id=version.pending.evaluation_id,
                job_id=job_id,
                reason=reason or "the evaluation run ended without a result",
            )
        ]

    def approve(
        self,
        version_id: str,
        approver: str,
        gate_results: Sequence[GateResult],
        sign: ManifestSigning,
        now: datetime,
    ) -> list[DomainEvent]:
        """testing → approved, by someone other than the job's creator and the evaluation's requester,
        once the evaluation finished and every gate passes."""
        version = self._for(version_id, "approve")
        if version.evaluation is None or version.pending is not None:
            raise IllegalTransition(
                f"cannot approve {version.label}: its evaluation has not finished; "
                "wait for it (yard models show) before approving"
            )
        if not version.registered.created_by:
            raise PermissionDenied(
                f"the creator of training job {version.registered.training_job_id} of {version.label} is not "
                "recorded, so four eyes cannot be checked; train and register the model again"
            )
        if approver == version.registered.created_by:
            raise PermissionDenied(
                f"{approver} created training job {version.registered.training_job_id} of {version.label} "
                "and cannot approve it (four eyes): another super admin must approve"
            )
        if approver == version.evaluation.requested_by:
            raise PermissionDenied(
                f"{approver} requested the evaluation of {version.label} and cannot approve it "
                "(four eyes): another super admin must approve"
            )
        check_gates(gate_results, str(version.semantic_version))
        return [
            ModelApproved(
                version_id=version_id,
                org_id=self.org_id,
                ai_module=self.ai_module,
                semantic_version=str(version.semantic_version),
                approved_by=approver,
                approved_at=now,
                evaluation_id=version.evaluation.evaluation_id,
                gates=list(gate_results),
                manifest=sign(version, approver, now),
            )
        ]

    def reject(self, version_id: str, by: str, reason: str) -> list[DomainEvent]:
        """testing or approved → draft, with the reason."""
        version = self._for(version_id, "reject")
        _require_reason(reason)
        return [
            ModelRejected(
                version_id=version_id, rejected_by=by, reason=reason, previous_status=version.status
            )
        ]

    def release(
        self,
        version_id: str,
        environment: str,
        notes: str,
        by: str,
        now: datetime,
        active_limit: int | None,
        plan_name: str = "organization's",
    ) -> list[DomainEvent]:
        """The version becomes the current release of `environment` (approved or released before);
        `active_limit` is the limit of the plan named `plan_name` (named in the refusal)."""
        version = self._for(version_id, "release")
        _check_environment(environment)
        if not notes.strip():
            raise InvalidArgument("release_notes", "a release needs notes: say what changed for the edges")
        if len(notes) > RELEASE_NOTES_MAX_CHARS:
            raise InvalidArgument(
                "release_notes", f"release notes are limited to {RELEASE_NOTES_MAX_CHARS} characters"
            )
        current = self.current.get(environment)
        if current == version_id:
            raise IllegalTransition(f"{version.label} is already the current release in {environment}")
        if current is None and len(self.current) >= MAX_ENVIRONMENTS:
            raise InvalidArgument(
                "environment",
                f"module {self.ai_module} is released in {MAX_ENVIRONMENTS} environments, the most",
            )
        if current is not None and version.semantic_version < self.versions[current].semantic_version:
            raise IllegalTransition(
                f"{version.label} is earlier than {self.versions[current].label}, the current release in "
                f"{environment}: going back is a rollback (yard models rollback), which deprecates the "
                "current one"
            )
        if version.status == "approved" and active_limit is not None and len(self.active()) >= active_limit:
            raise QuotaExceeded(
                f"module {self.ai_module} already has {len(self.active())} active versions "
                f"(released, not deprecated): the {plan_name} plan's limit is {active_limit} "
                "active models per module; deprecate one first"
            )
        return [self._released(version, environment, notes, by, now, current, rollback=False)]

    def deprecate(self, version_id: str, by: str, reason: str) -> list[DomainEvent]:
        """approved or released → deprecated (final); it stops being current wherever it was."""
        version = self._for(version_id, "deprecate")
        _require_reason(reason)
        return [self._deprecated(version, by, reason, rollback=False)]

    def rollback(
        self, target_id: str, environment: str, by: str, reason: str, now: datetime
    ) -> list[DomainEvent]:
        """Release the earlier version `target_id` in `environment` and deprecate the current one."""
        _check_environment(environment)
        _require_reason(reason)
        target = self._for(target_id, "release")
        current_id = self.current.get(environment)
        if current_id is None:
            raise IllegalTransition(
                f"nothing is released in {environment} for module {self.ai_module}; release a version instead"
            )
        current = self.versions[current_id]
        if target.semantic_version >= current.semantic_version:
            raise IllegalTransition(
                f"rollback goes to an earlier version: {target.label} is not earlier than the current "
                f"release {current.label} in {environment}; release it instead"
            )
        return [
            self._released(target, environment, reason, by, now, current_id, rollback=True),
            self._deprecated(current, by, reason, rollback=True),
        ]

    # ---- folding -----------------------------------------------------------------------------

    def apply(self, event: DomainEvent) -> ModelModule:
        """The module after `event`."""
        module = replace(self, version=self.version + 1)
        if isinstance(event, ModelVersionRegistered):
            state = VersionState(event, SemVer.parse(event.semantic_version))
            return replace(
                module,
                org_id=event.org_id,
                ai_module=event.ai_module,
                versions={**self.versions, event.version_id: state},
                jobs={**self.jobs, event.training_job_id: event.version_id},
            )
        version_id = getattr(event, "version_id", None)
        if version_id not in self.versions:
            return module
        before = self.versions[version_id]
        after, current, jobs = evolve_version(before, event, dict(self.current), dict(self.jobs))
        versions = {**self.versions, version_id: replace(after, revision=before.revision + 1)}
        environment = event.environment if isinstance(event, ModelReleased) else None
        replaced = None if environment is None else self.current.get(environment)
        if environment is not None and replaced is not None and replaced != version_id:
            old = versions[replaced]  # no longer current there, still active
            versions[replaced] = replace(old, environments=old.environments - {environment})
        return replace(module, versions=versions, current=current, jobs=jobs)

    # ---- helpers -----------------------------------------------------------------------------

    def _for(self, version_id: str, move: Move) -> VersionState:
        version = self.get(version_id)
        check_move(move, version_id, str(version.semantic_version), version.status)
        return version

    def _pending_for(self, job_id: str) -> VersionState | None:
        version_id = self.jobs.get(job_id)
        version = None if version_id is None else self.versions.get(version_id)
        if version is None or version.pending is None or version.pending.job_id != job_id:
            return None
        return version

    def _released(
        self,
        version: VersionState,
        environment: str,
        notes: str,
        by: str,
        now: datetime,
        replaces: str | None,
        *,
        rollback: bool,
    ) -> ModelReleased:
        return ModelReleased(
            version_id=version.version_id,
            org_id=self.org_id,
            ai_module=self.ai_module,
            semantic_version=str(version.semantic_version),
            environment=environment,
            released_by=by,
            released_at=now,
            release_notes=notes,
            artifact_sha256=version.registered.artifact_sha256,
            artifact_size_bytes=version.registered.artifact_size_bytes,
            replaces_version_id=replaces,
            rollback=rollback,
        )

    def _deprecated(self, version: VersionState, by: str, reason: str, *, rollback: bool) -> ModelDeprecated:
        environments = sorted(version.environments)
        return ModelDeprecated(
            version_id=version.version_id,
            org_id=self.org_id,
            ai_module=self.ai_module,
            semantic_version=str(version.semantic_version),
            environments=environments,
            deprecated_by=by,
            reason=reason,
            rollback=rollback,
        )


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise InvalidArgument("reason", "give a reason: it is recorded for the audit")


def _check_environment(environment: str) -> None:
    if not _ENVIRONMENT.fullmatch(environment):
        raise InvalidArgument(
            "environment",
            f"{environment[:40]!r} is not an environment name; use lowercase letters, digits and '-', "
            f"e.g. {DEFAULT_ENVIRONMENT}",
        )
