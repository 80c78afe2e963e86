"""dataset-svc's use cases: load the aggregate, let it decide, append what it decided.

Uploads are atomic per call: files are staged, inspected and only then promoted into the blob store and
recorded in one append, so a refused or interrupted upload leaves no sample behind.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from modelyard_blobs.blobs import BlobStore
from modelyard_blobs.staging import StagedBlob
from modelyard_dataset.app.loading import DatasetLoader, ledger_stream
from modelyard_dataset.app.storage_charges import StorageCharges
from modelyard_dataset.domain.dataset import Dataset, IncomingFile, UploadPlan
from modelyard_dataset.domain.identity import dataset_id_for
from modelyard_dataset.domain.label_schema import checked_annotation
from modelyard_dataset.domain.readiness import ReadinessPolicy
from modelyard_dataset.domain.sample import Sample
from modelyard_dataset.domain.splits import checked_fractions
from modelyard_dataset.domain.storage import StorageRoom
from modelyard_dataset.domain.versions import StorageUse, VersionRequest, freeze_version, working_readiness
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import InvalidArgument, InvalidFields
from modelyard_events.envelope import CommandContext
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.plans import Plan
from modelyard_events.schemas.datasets import (
    DATASET_STREAM,
    SAMPLE_STREAM,
    STORAGE_STREAM,
    AddedSample,
    AnnotationData,
    DatasetVersionPublished,
    ReadinessData,
)
from modelyard_events.store.ports import EventStore

_RETRIES = 5
_LABEL_CONCURRENCY = 16
MAX_LABELS_PER_CALL = 5000


@dataclass(frozen=True)
class NewDataset:
    """A CreateDataset request after the transport."""

    org_id: str
    name: str
    ai_module: str
    environment: str
    task: str
    classes: list[str]
    request_id: str | None = None


@dataclass(frozen=True)
class AcceptedFile:
    """An uploaded file that passed inspection: staged locally, not yet in the blob store."""

    file: IncomingFile
    staged: StagedBlob


@dataclass(frozen=True)
class UploadOutcome:
    """What an upload did: per file its sample and whether it was a duplicate; the org's usage."""

    plan: UploadPlan
    org_bytes_used: int
    org_bytes_limit: int | None


class DatasetCommands:
    """Every state change of datasets and samples goes through here."""

    def __init__(
        self,
        store: EventStore,
        blobs: BlobStore,
        plan_of: Callable[[str], Plan],
        policy: ReadinessPolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store, self._blobs, self._plan_of, self.policy = store, blobs, plan_of, policy
        self._clock = clock
        self.load = DatasetLoader(store)
        self._charges = StorageCharges(store, self.load)

    async def create(self, new: NewDataset, caller: Caller) -> Dataset:
        """DatasetCreated; the same (organization, request id) returns the dataset created the first time."""
        dataset_id = dataset_id_for(new.org_id, new.request_id)
        events = Dataset.create(
            dataset_id=dataset_id,
            org_id=new.org_id,
            name=new.name,
            ai_module=new.ai_module,
            environment=new.environment,
            task=new.task,
            classes=new.classes,
            created_by=caller.actor.subject,
            request_id=new.request_id,
        )
        try:
            await self._store.append(DATASET_STREAM, dataset_id, 0, events, caller.context_for(new.org_id))
        except ConcurrencyConflict:
            if not new.request_id:
                raise
        return await self.load.dataset(dataset_id)

    async def upload(
        self, dataset_id: str, upload_id: str | None, files: Sequence[AcceptedFile], caller: Caller
    ) -> UploadOutcome:
        """Promote the new blobs, charge their bytes to the organization, then record the samples.

        Blobs first: a blob nobody names yet is harmless (content-addressed, reused by the next upload
        of those bytes). The charge and the samples are two appends; the charge stays open in the
        ledger until a later upload of the organization settles or releases it (domain/storage.py), so
        a crash between the two leaks nothing for good. If recording the samples fails, the charge is
        released before the error reaches the caller.
        """
        if not files:
            raise InvalidArgument("files", "the upload holds no file; send at least one")
        upload = upload_id or f"upl-{uuid.uuid4().hex[:20]}"
        for attempt in range(1, _RETRIES + 1):
            dataset = await self.load.dataset(dataset_id)
            plan = dataset.plan_upload([accepted.file for accepted in files])
            await self._promote(files, {s.sha256 for s in plan.added})
            context, org_plan = caller.context_for(dataset.org_id), self._plan_of(dataset.org_id)
            now = self._clock()
            ledger = await self.load.ledger(dataset.org_id)
            others = await self._charges.abandoned_datasets(ledger, dataset_id, now, context)
            reconciled = ledger.reconcile(others)  # the upload's own dataset: by `charge`
            charged = ledger.apply_all(reconciled).charge(
                org_plan, dataset.uploads, upload, plan.bytes_added, now
            )
            decided = [*reconciled, *charged]
            try:
                if decided:
                    stream = ledger_stream(dataset.org_id)
                    await self._store.append(STORAGE_STREAM, stream, ledger.version, decided, context)
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue  # another upload of the organization charged first: decide again
            try:
                events = dataset.add_samples(upload, plan)
                if events:
                    await self._store.append(DATASET_STREAM, dataset_id, dataset.version, events, context)
            except BaseException as error:
                await asyncio.shield(
                    self._charges.give_back(dataset_id, dataset.org_id, upload, error, context)
                )
                if isinstance(error, ConcurrencyConflict) and attempt < _RETRIES:
                    continue  # another upload into this dataset got in first: duplicates may differ now
                raise
            used = ledger.apply_all(decided).total_bytes
            return UploadOutcome(plan, used, org_plan.dataset_bytes)
        raise AssertionError("unreachable")

    async def label(
        self, dataset_id: str, labels: Sequence[tuple[str, AnnotationData]], caller: Caller
    ) -> list[tuple[Sample, AddedSample]]:
        """Record the caller's label of each sample; every label is checked before any is recorded."""
        dataset = await self.load.dataset(dataset_id)
        dataset.check_writable("label its samples")
        checked = self._checked_labels(dataset, labels)
        context = caller.context_for(dataset.org_id)
        current = await self.load.samples(dataset, [sample_id for sample_id, _ in checked])
        gate = asyncio.Semaphore(_LABEL_CONCURRENCY)

        async def label_one(sample: Sample, annotation: AnnotationData) -> Sample:
            async with gate:
                return await self._label_sample(sample, annotation, caller.actor.subject, context)

        # A TaskGroup, not gather: if one label fails, the others are cancelled before the error is
        # returned, instead of going on appending after the caller was told the call failed.
        try:
            async with asyncio.TaskGroup() as group:
                pairs = zip(current, checked, strict=True)
                tasks = [group.create_task(label_one(s, a)) for s, (_, a) in pairs]
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None  # one error, mapped to its gRPC status as usual
        return [(task.result(), dataset.samples[task.result().sample_id]) for task in tasks]

    async def review(
        self, sample_id: str, approve: bool, reason: str, expected_version: int, caller: Caller
    ) -> Sample:
        """Approve or reject the sample as the reviewer saw it at `expected_version`.

        No retry: if another reviewer (or annotator) changed the sample since, ConcurrencyConflict
        (ABORTED) tells this reviewer to look again, since their decision was about another state.
        """
        org_id, sample = await self.load.sample(sample_id)
        # The dataset's own events say whether it is archived or the sample deleted (one more read).
        dataset = await self.load.dataset(sample.dataset_id)
        dataset.check_writable("review its samples")
        dataset.sample(sample_id)
        if sample.version != expected_version:
            raise ConcurrencyConflict(sample_id, expected_version, sample.version)
        reviewer = caller.actor.subject
        events = sample.approve(reviewer, reason) if approve else sample.reject(reviewer, reason)
        await self._store.append(SAMPLE_STREAM, sample_id, sample.version, events, caller.context_for(org_id))
        return sample.apply(events[0])

    async def publish(
        self, dataset_id: str, request: VersionRequest, caller: Caller
    ) -> tuple[Dataset, DatasetVersionPublished]:
        """Freeze the verified samples into the next version; the same request id returns the same version.

        Returns the dataset as it is after publishing, with the version's event.
        """
        checked_fractions(request.train_fraction, request.val_fraction)
        for attempt in range(1, _RETRIES + 1):
            dataset = await self.load.dataset(dataset_id)
            if request.request_id and request.request_id in dataset.publish_requests:
                done = dataset.versions[dataset.publish_requests[request.request_id]]
                return dataset, _same_request(done, request)
            samples = await self.load.samples(dataset, sorted(dataset.samples))
            storage = await self._storage_use(dataset.org_id)
            frozen = freeze_version(dataset, samples, request, storage, self.policy, caller.actor.subject)
            await self._blobs.put_bytes(frozen.data)
            try:
                context = caller.context_for(dataset.org_id)
                await self._store.append(DATASET_STREAM, dataset_id, dataset.version, [frozen.event], context)
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue
            return dataset.apply(frozen.event), frozen.event
        raise AssertionError("unreachable")

    async def readiness(self, dataset_id: str, version: int, family: str | None) -> ReadinessData:
        """A published version's frozen report, or (version 0) the working set's as it would publish now."""
        dataset = await self.load.dataset(dataset_id)
        if version:
            return dataset.published(version).readiness
        samples = await self.load.samples(dataset, sorted(dataset.samples))
        storage = await self._storage_use(dataset.org_id)
        return working_readiness(dataset, samples, storage, self.policy, family)

    async def room_left(self, org_id: str) -> StorageRoom:
        """What the organization may still store; QuotaExceeded when nothing is left."""
        return (await self.load.ledger(org_id)).room_left(self._plan_of(org_id))

    async def _storage_use(self, org_id: str) -> StorageUse:
        ledger = await self.load.ledger(org_id)
        return StorageUse(ledger.total_bytes, self._plan_of(org_id).dataset_bytes)

    async def _promote(self, files: Sequence[AcceptedFile], new_hashes: set[str]) -> None:
        # A retry after a conflict finds the files it promoted already moved away.
        fresh = [a.staged for a in files if a.file.sha256 in new_hashes and a.staged.path.exists()]
        await self._blobs.promote_all(fresh)

    def _checked_labels(
        self, dataset: Dataset, labels: Sequence[tuple[str, AnnotationData]]
    ) -> list[tuple[str, AnnotationData]]:
        if not labels:
            raise InvalidArgument("labels", "send at least one label")
        if len(labels) > MAX_LABELS_PER_CALL:
            raise InvalidArgument("labels", f"send at most {MAX_LABELS_PER_CALL} labels per call")
        problems: dict[str, str] = {}
        checked: list[tuple[str, AnnotationData]] = []
        seen: set[str] = set()
        for index, (sample_id, annotation) in enumerate(labels):
            field = f"labels[{index}]"
            if sample_id in seen:
                problems[field] = (
                    f"sample {sample_id} is labeled twice in this call; send one label per sample"
                )
            elif sample_id not in dataset.samples:
                problems[field] = f"dataset {dataset.dataset_id} has no sample {sample_id!r}"
            else:
                try:
                    checked.append((sample_id, checked_annotation(dataset.label_schema, annotation, field)))
                except InvalidArgument as error:
                    problems.update(error.problems)
            seen.add(sample_id)
        if problems:
            raise InvalidFields(dict(list(problems.items())[:20]))  # the first 20 are enough to act on
        return checked

    async def _label_sample(
        self, sample: Sample, annotation: AnnotationData, annotator: str, context: CommandContext
    ) -> Sample:
        sample_id = sample.sample_id
        for attempt in range(1, _RETRIES + 1):
            if attempt > 1:  # another annotator's label got in first: decide again on fresh state
                _, sample = await self.load.sample(sample_id)
            events = sample.label(annotator, annotation)
            if not events:
                return sample
            try:
                await self._store.append(SAMPLE_STREAM, sample_id, sample.version, events, context)
                return sample.apply(events[0])
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
        raise AssertionError("unreachable")


def _same_request(published: DatasetVersionPublished, request: VersionRequest) -> DatasetVersionPublished:
    """The version a repeated request id published, unless the repeat asks for something else."""
    asked = (request.seed, request.train_fraction, request.val_fraction, request.family)
    done = (published.seed, published.train_fraction, published.val_fraction, published.family)
    if asked != done:
        raise InvalidArgument(
            "request_id",
            f"{request.request_id!r} already published version {published.version} "
            f"with seed {published.seed}, "
            f"fractions {published.train_fraction}/{published.val_fraction} and family {published.family}; "
            "use a new request id to publish with other parameters",
        )
    return published
