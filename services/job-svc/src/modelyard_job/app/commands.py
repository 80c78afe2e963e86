"""The job commands: load the TrainingJob, let it decide, append its events at the version it was read.

A conflict (another command appended meanwhile) is retried on fresh state, since the aggregate decides
again, unless the caller pinned `expected_version`, in which case it surfaces as ABORTED.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from modelyard_events.caller import Caller
from modelyard_events.domain_errors import DomainError
from modelyard_events.envelope import DomainEvent
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.jobs import JOB_EVENTS, JOB_STREAM, ModelInput
from modelyard_events.schemas.registry import ModelEvaluationRequested
from modelyard_events.schemas.training import TrainingReport
from modelyard_events.store.ports import EventStore
from modelyard_job.app.base_version_gate import ModelVersionLookup, checked_base_version
from modelyard_job.app.dataset_gate import VersionLookup, check_trainable
from modelyard_job.app.ids import dispatch_id_for, job_id_for
from modelyard_job.app.quota import use_job_quota
from modelyard_job.domain import Plan, TrainingJob, month_of
from modelyard_job.domain.job_kinds import EvaluationRun
from modelyard_job.domain.lost_dispatches import DEFAULT_MAX_LOST_DISPATCHES

Decision = Callable[[TrainingJob], list[DomainEvent]]
_RETRIES = 5
DEFAULT_EVALUATION_PRIORITY = 50


def utc_now() -> datetime:
    """The service clock (tests pass their own)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewJob:
    """A CreateJob request after the transport: who it is for and what to train (from scratch, or
    fine-tuning the registered version `base_version_id`)."""

    org_id: str
    name: str
    ai_module: str
    family: str
    dataset_uri: str
    hyperparameters: dict[str, Any]
    priority: int
    request_id: str | None = None
    base_version_id: str | None = None
    description: str = ""


class JobCommands:
    """Every state change of a job goes through here (gRPC, dispatcher, trainer and registry events)."""

    def __init__(
        self,
        store: EventStore,
        plan_of: Callable[[str], Plan],
        clock: Callable[[], datetime] = utc_now,
        datasets: VersionLookup | None = None,
        *,
        allow_file_datasets: bool = False,
        max_lost_dispatches: int = DEFAULT_MAX_LOST_DISPATCHES,
        models: ModelVersionLookup | None = None,
        evaluation_priority: int = DEFAULT_EVALUATION_PRIORITY,
    ) -> None:
        self._store, self._plan_of, self._clock, self._datasets = store, plan_of, clock, datasets
        self._allow_file_datasets, self._max_lost = allow_file_datasets, max_lost_dispatches
        self._models, self._evaluation_priority = models, evaluation_priority

    async def load(self, job_id: str) -> TrainingJob:
        """The job as its stored events say it is (NotFound when it has none)."""
        stored = await self._store.read_stream(job_id)
        return TrainingJob.rebuild(job_id, (JOB_EVENTS.decode(e) for e in stored))

    async def create(self, new: NewJob, caller: Caller) -> TrainingJob:
        """Validate, check a base version is approved or released in the same organization, module
        and family (fine-tuning), check a dataset version is published and ready (a file:// URI only
        where allowed), count the job in the plan's quota, append JobCreated + JobQueued.

        The same (organization, request_id) returns the job created the first time, unchanged.
        """
        job_id = job_id_for(new.org_id, new.request_id)
        self._new_job_events(new, job_id, caller, None)  # every field checked before any call out
        if new.request_id and await self._exists(job_id):
            return await self.load(job_id)
        base = await self._base_version(new)
        await check_trainable(
            self._datasets, new.org_id, new.dataset_uri, new.family, self._allow_file_datasets
        )
        events = self._new_job_events(new, job_id, caller, base)
        context = caller.context_for(new.org_id)
        plan = self._plan_of(new.org_id)
        await use_job_quota(self._store, plan, new.org_id, month_of(self._clock().date()), job_id, context)
        try:
            await self._store.append(JOB_STREAM, job_id, 0, events, context)
        except ConcurrencyConflict:
            if not new.request_id:
                raise
        return await self.load(job_id)  # a racing twin with the same request id created it

    async def create_evaluation(self, requested: ModelEvaluationRequested, caller: Caller) -> TrainingJob:
        """The evaluation run the registry asked for, as job `requested.job_id` (nothing when it exists).

        Not counted in the plan's quota (evaluations are not training jobs). A request that cannot run
        (a field job-svc refuses, a dataset version not published or not ready) is recorded as the job
        failing at once with the reason, so the registry hears of it; dataset-svc being unreachable is
        raised (DependencyUnavailable), to be tried again.
        """
        run = EvaluationRun.requested(requested, self._evaluation_priority)
        if await self._exists(run.job_id):
            return await self.load(run.job_id)
        try:
            events = TrainingJob.create_evaluation(run)
            await check_trainable(
                self._datasets, run.org_id, run.dataset_uri, run.family, self._allow_file_datasets
            )
        except DomainError as refusal:
            events = TrainingJob.refuse_evaluation(run, refusal.message)
        with contextlib.suppress(ConcurrencyConflict):  # another replica created it from the same request
            await self._store.append(JOB_STREAM, run.job_id, 0, events, caller.context_for(run.org_id))
        return await self.load(run.job_id)

    async def pause(self, job_id: str, reason: str, caller: Caller, expected_version: int = 0) -> TrainingJob:
        """Pause now (queued) or ask the trainer to (running)."""
        return await self._decide(job_id, lambda job: job.pause(reason), caller, expected_version)

    async def resume(
        self, job_id: str, reason: str, caller: Caller, expected_version: int = 0
    ) -> TrainingJob:
        """Re-queue a paused job from its last checkpoint."""
        return await self._decide(job_id, lambda job: job.resume(reason), caller, expected_version)

    async def cancel(
        self, job_id: str, reason: str, caller: Caller, expected_version: int = 0
    ) -> TrainingJob:
        """Cancel now (not running) or ask the trainer to (running)."""
        return await self._decide(job_id, lambda job: job.cancel(reason), caller, expected_version)

    async def retry(self, job_id: str, reason: str, caller: Caller, expected_version: int = 0) -> TrainingJob:
        """Start a new attempt of a failed or cancelled job."""
        return await self._decide(job_id, lambda job: job.retry(reason), caller, expected_version)

    async def set_priority(
        self, job_id: str, priority: int, caller: Caller, expected_version: int = 0
    ) -> TrainingJob:
        """Change an unfinished job's priority (the queue reorders)."""
        return await self._decide(job_id, lambda job: job.set_priority(priority), caller, expected_version)

    async def dispatch(
        self, job_id: str, trainer_id: str, lease_ttl: timedelta, caller: Caller
    ) -> TrainingJob:
        """Lease a queued job to `trainer_id`; IllegalTransition if it is no longer queued."""

        def decide(job: TrainingJob) -> list[DomainEvent]:
            dispatch_id = dispatch_id_for(job.job_id, job.attempt)
            return job.dispatch(
                trainer_id=trainer_id, dispatch_id=dispatch_id, now=self._clock(), lease_ttl=lease_ttl
            )

        return await self._decide(job_id, decide, caller)

    async def expire_lease(self, job_id: str, dispatch_id: str, caller: Caller) -> TrainingJob:
        """Take the job back from a silent trainer (nothing when the lease is no longer current); the
        lapse that reaches the cap on lost dispatches fails the job instead."""
        return await self._decide(job_id, lambda job: job.expire_lease(dispatch_id, self._max_lost), caller)

    async def record_report(self, report: TrainingReport, caller: Caller) -> TrainingJob:
        """The job transition a trainer's report implies (nothing for stale or duplicate reports)."""
        return await self._decide(report.job_id, lambda job: job.on_training_report(report), caller)

    async def _decide(
        self, job_id: str, decision: Decision, caller: Caller, expected_version: int = 0
    ) -> TrainingJob:
        for attempt in range(1, _RETRIES + 1):
            job = await self.load(job_id)
            if expected_version and job.version != expected_version:
                raise ConcurrencyConflict(job_id, expected_version, job.version)
            events = decision(job)
            if not events:
                return job
            try:
                await self._store.append(
                    JOB_STREAM, job_id, job.version, events, caller.context_for(job.org_id)
                )
                return job.apply_all(events)
            except ConcurrencyConflict:
                if expected_version or attempt == _RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def _exists(self, job_id: str) -> bool:
        return bool(await self._store.read_stream(job_id))

    async def _base_version(self, new: NewJob) -> ModelInput | None:
        if not new.base_version_id:
            return None
        return await checked_base_version(
            self._models, new.base_version_id, new.org_id, new.ai_module, new.family
        )

    @staticmethod
    def _new_job_events(
        new: NewJob, job_id: str, caller: Caller, base: ModelInput | None
    ) -> list[DomainEvent]:
        return TrainingJob.create(
            job_id=job_id,
            org_id=new.org_id,
            name=new.name,
            ai_module=new.ai_module,
            family=new.family,
            dataset_uri=new.dataset_uri,
            hyperparameters=new.hyperparameters,
            priority=new.priority,
            created_by=caller.actor.subject,
            request_id=new.request_id,
            description=new.description,
            model_input=base,
        )
