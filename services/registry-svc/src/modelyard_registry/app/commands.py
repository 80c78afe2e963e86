"""The registry's commands: find the version's module, load it, let it decide, append at its version.

A conflict means another command changed the module meanwhile. When it changed the version this
command is about (e.g. two approvals racing), the loser gets ABORTED naming what happened; a change
to another version of the module is retried on fresh state, since the aggregate decides again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from modelyard_artifacts.manifest import ArtifactManifest, ManifestSigner
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.plans import Plan
from modelyard_events.schemas.bounds import URI_MAX_CHARS
from modelyard_events.schemas.jobs import JobCompleted, JobEvaluationCompleted
from modelyard_events.schemas.manifest import VersionUri
from modelyard_events.schemas.registry import (
    MODULE_STREAM,
    REGISTRY_EVENTS,
    SignedArtifactManifest,
    module_stream_id,
)
from modelyard_events.store.ports import EventStore
from modelyard_registry.app.artifact_intake import ArtifactIntake
from modelyard_registry.domain.gates import GateConfig, gates_for, judged
from modelyard_registry.domain.module import ModelModule, Registration
from modelyard_registry.domain.version_state import VersionState

ModuleDecision = Callable[[ModelModule], list[DomainEvent]]
Locate = Callable[[str], Awaitable[tuple[str, str]]]
"""version id → (org_id, ai_module); NotFound when the registry has no such version."""
_RETRIES = 5
_VERSION_NAMESPACE = uuid.UUID("6f0c3f1e-5b1a-4d55-9c57-6d2f0d8e1a10")


def utc_now() -> datetime:
    """The service clock (tests pass their own)."""
    return datetime.now(UTC)


def version_id_for(job_id: str) -> str:
    """The version a training job registers: derived from the job, so a redelivery finds it again."""
    return str(uuid.uuid5(_VERSION_NAMESPACE, f"training-job:{job_id}"))


@dataclass(frozen=True)
class RegistryDefaults:
    """What a new version gets that a training job does not say."""

    min_edge_version: str = "1.0.0"
    supported_platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64")


def module_from_log(org_id: str, ai_module: str, stored: Sequence[EventEnvelope]) -> ModelModule:
    """The module its stored events make, each version knowing when its registration was recorded."""
    module = ModelModule.rebuild(org_id, ai_module, (REGISTRY_EVENTS.decode(e) for e in stored))
    return module.with_registration_times(
        {e.data["version_id"]: e.occurred_at for e in stored if e.type == "ModelVersionRegistered"}
    )


class RegistryCommands:
    """Every state change of a model version goes through here (gRPC and the job-event reaction)."""

    def __init__(
        self,
        store: EventStore,
        intake: ArtifactIntake,
        locate: Locate,
        signer: ManifestSigner,
        gates: GateConfig,
        plan_of: Callable[[str], Plan],
        clock: Callable[[], datetime] = utc_now,
        defaults: RegistryDefaults = RegistryDefaults(),
    ) -> None:
        self._store, self._intake, self._locate, self._signer = store, intake, locate, signer
        self._gates, self._plan_of, self._clock, self._defaults = gates, plan_of, clock, defaults

    # ---- reads -------------------------------------------------------------------------------

    async def load_module(self, org_id: str, ai_module: str) -> ModelModule:
        """The module as its stored events say it is (empty when it has none)."""
        return module_from_log(
            org_id, ai_module, await self._store.read_stream(module_stream_id(org_id, ai_module))
        )

    async def load(self, version_id: str) -> tuple[ModelModule, VersionState]:
        """The version's module and the version (NotFound when unknown)."""
        org_id, ai_module = await self._locate(version_id)
        module = await self.load_module(org_id, ai_module)
        return module, module.get(version_id)

    # ---- reactions to job-svc's events ----------------------------------------------------------

    async def register_completed(self, completed: JobCompleted, caller: Caller, creator: str = "") -> None:
        """Register the job's artifact as a draft version (nothing if it already is).

        `creator`: who created the job, from its JobCreated, when JobCompleted does not say (older
        events); never the actor of JobCompleted, which is a trainer or job-svc, not a person.
        """
        module = await self.load_module(completed.org_id, completed.ai_module)
        if completed.job_id in module.jobs:
            return
        stored = await self._intake.take(
            completed.artifact_uri, completed.artifact_sha256, completed.artifact_size_bytes
        )
        registration = Registration(
            version_id=version_id_for(completed.job_id),
            org_id=completed.org_id,
            ai_module=completed.ai_module,
            name=completed.name or f"{completed.ai_module} from job {completed.job_id}",
            description=completed.description,
            training_job_id=completed.job_id,
            base_version_id=completed.base_version_id,
            created_by=completed.created_by or creator,
            artifact_uri=stored.uri,
            artifact_sha256=stored.sha256,
            artifact_size_bytes=stored.size_bytes,
            config=stored.config,
            training_metrics=dict(completed.metrics),
            dataset_uri=completed.dataset_uri,
            dataset_manifest_sha256=completed.dataset_manifest_sha256,
            min_edge_version=self._defaults.min_edge_version,
            supported_platforms=list(self._defaults.supported_platforms),
        )
        # Decided on the module read before the copy; a change meanwhile conflicts and is re-read.
        await self._decide_module(module, lambda m: m.register(registration), caller)

    async def record_evaluation(self, done: JobEvaluationCompleted, caller: Caller) -> None:
        """ModelEvaluated for the version whose evaluation run this was."""
        module = await self.load_module(done.org_id, done.ai_module)
        await self._decide_module(module, lambda m: m.record_evaluation(done.job_id, done.report), caller)

    async def record_evaluation_failure(
        self, org_id: str, ai_module: str, job_id: str, reason: str, caller: Caller
    ) -> None:
        """The evaluation run failed or was cancelled: the version goes back to draft."""
        module = await self.load_module(org_id, ai_module)
        await self._decide_module(module, lambda m: m.record_evaluation_failure(job_id, reason), caller)

    # ---- operator commands -------------------------------------------------------------------

    async def evaluate(self, version_id: str, dataset_uri: str, split: str, caller: Caller) -> VersionState:
        """draft → testing: ask the queue for an evaluation run on a held-out split."""
        _, version = await self.load(version_id)
        dataset = dataset_uri or version.registered.dataset_uri
        if len(dataset) > URI_MAX_CHARS:
            raise InvalidArgument("dataset_uri", f"a dataset URI has at most {URI_MAX_CHARS} characters")
        if dataset.startswith("dataset://"):
            try:
                VersionUri.parse(dataset)
            except ValueError as error:
                raise InvalidArgument("dataset_uri", str(error)) from None
        chosen = split or ("val" if dataset == version.registered.dataset_uri else "test")
        if chosen not in ("val", "test"):
            raise InvalidArgument("split", f"{chosen!r} is not a held-out split; use val or test")
        evaluation_id = str(uuid.uuid4())
        job_id = str(uuid.uuid5(_VERSION_NAMESPACE, f"evaluation:{evaluation_id}"))
        subject = caller.actor.subject
        return await self._decide(
            version_id,
            lambda m: m.request_evaluation(version_id, evaluation_id, job_id, dataset, chosen, subject),
            caller,
        )

    async def approve(self, version_id: str, caller: Caller) -> VersionState:
        """testing → approved (four eyes, every gate passing); the manifest is signed here."""
        approver = caller.actor.subject

        def decide(module: ModelModule) -> list[DomainEvent]:
            version = module.get(version_id)
            report = None if version.evaluation is None else version.evaluation.report
            results = [] if report is None else judged(gates_for(self._gates, module.ai_module), report)
            return module.approve(version_id, approver, results, self._sign, self._clock())

        return await self._decide(version_id, decide, caller)

    async def reject(self, version_id: str, reason: str, caller: Caller) -> VersionState:
        """testing or approved → draft."""
        by = caller.actor.subject
        return await self._decide(version_id, lambda m: m.reject(version_id, by, reason), caller)

    async def release(self, version_id: str, environment: str, notes: str, caller: Caller) -> VersionState:
        """The version becomes the current release of `environment`."""
        by = caller.actor.subject

        def decide(module: ModelModule) -> list[DomainEvent]:
            plan = self._plan_of(module.org_id)
            limit = plan.active_models_per_module
            return module.release(version_id, environment, notes, by, self._clock(), limit, plan.name)

        return await self._decide(version_id, decide, caller)

    async def deprecate(self, version_id: str, reason: str, caller: Caller) -> VersionState:
        """approved or released → deprecated (final)."""
        by = caller.actor.subject
        return await self._decide(version_id, lambda m: m.deprecate(version_id, by, reason), caller)

    async def rollback(
        self, target_id: str, environment: str, reason: str, caller: Caller
    ) -> tuple[VersionState, VersionState]:
        """Release the earlier `target_id` again and deprecate the current release, in one append."""
        by = caller.actor.subject
        seen, _ = await self.load(target_id)
        current_id = seen.current.get(environment)

        def decide(module: ModelModule) -> list[DomainEvent]:
            now_current = module.current.get(environment)
            if now_current != current_id:  # never deprecate a release the operator has not seen
                replaced = "nothing" if now_current is None else module.get(now_current).label
                raise _aborted(
                    module_stream_id(module.org_id, module.ai_module),
                    f"the current release in {environment} changed to {replaced} while the rollback was "
                    "decided; look again before rolling back",
                )
            return module.rollback(target_id, environment, by, reason, self._clock())

        target = await self._decide(target_id, decide, caller)
        module, _ = await self.load(target_id)
        return target, module.get(current_id) if current_id else target

    async def renumber(
        self, version_id: str, semantic_version: str, reason: str, caller: Caller
    ) -> VersionState:
        """Set a draft version's number explicitly."""
        return await self._decide(
            version_id, lambda m: m.renumber(version_id, semantic_version, reason), caller
        )

    # ---- helpers -----------------------------------------------------------------------------

    def _sign(self, version: VersionState, approver: str, approved_at: datetime) -> SignedArtifactManifest:
        registered = version.registered
        manifest = ArtifactManifest(
            version_id=version.version_id,
            org_id=registered.org_id,
            ai_module=registered.ai_module,
            semantic_version=str(version.semantic_version),
            artifact_sha256=registered.artifact_sha256,
            artifact_size_bytes=registered.artifact_size_bytes,
            config_sha256=registered.config.config_sha256,
            approved_by=approver,
            approved_at=approved_at,
        )
        signed = self._signer.sign(manifest)
        return SignedArtifactManifest(
            manifest_json=signed.to_json().decode(),
            key_id=signed.key_id,
            config_sha256=registered.config.config_sha256,
        )

    async def _decide(self, version_id: str, decision: ModuleDecision, caller: Caller) -> VersionState:
        org_id, ai_module = await self._locate(version_id)
        module = await self.load_module(org_id, ai_module)
        seen = module.get(version_id).revision
        for _ in range(_RETRIES):
            events = decision(module)
            try:
                await self._append(module, events, caller)
            except ConcurrencyConflict as conflict:
                module = await self.load_module(org_id, ai_module)
                now = module.get(version_id)
                if now.revision != seen:
                    raise _changed_meanwhile(conflict, now) from None
                continue
            return module.get(version_id) if not events else _applied(module, events).get(version_id)
        raise ConcurrencyConflict(module_stream_id(org_id, ai_module), module.version, module.version)

    async def _decide_module(self, module: ModelModule, decision: ModuleDecision, caller: Caller) -> None:
        """Append what `decision` decides on `module`, re-reading and deciding again on a conflict."""
        for _ in range(_RETRIES):
            try:
                await self._append(module, decision(module), caller)
                return
            except ConcurrencyConflict:
                module = await self.load_module(module.org_id, module.ai_module)
        stream = module_stream_id(module.org_id, module.ai_module)
        raise ConcurrencyConflict(stream, module.version, module.version)

    async def _append(self, module: ModelModule, events: list[DomainEvent], caller: Caller) -> None:
        if events:
            stream = module_stream_id(module.org_id, module.ai_module)
            await self._store.append(
                MODULE_STREAM, stream, module.version, events, caller.context_for(module.org_id)
            )


def _applied(module: ModelModule, events: list[DomainEvent]) -> ModelModule:
    for event in events:
        module = module.apply(event)
    return module


def _changed_meanwhile(conflict: ConcurrencyConflict, now: VersionState) -> ConcurrencyConflict:
    return _aborted(
        conflict.stream_id,
        f"{now.label} changed while this command was decided (it is now {now.status}); "
        "another command won the race: read it again before deciding",
    )


def _aborted(stream_id: str, message: str) -> ConcurrencyConflict:
    """ABORTED for the caller, with what changed in its words instead of the store's."""
    error = ConcurrencyConflict(stream_id, 0, 0)
    error.args = (message,)
    return error
