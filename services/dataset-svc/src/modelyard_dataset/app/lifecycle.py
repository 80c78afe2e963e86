"""The dataset lifecycle's use cases: description, archive, and deleting samples or whole datasets.

The Dataset aggregate decides (domain/dataset.py); this reads what it needs (the versions' uses
from the views, the used versions' manifests from the blob store), appends what it decided, then
gives the bytes back on the organization's ledger and removes the files.

Order of a deletion: the dataset's event first (the record: from then on the sample is gone), then
the ledger's DatasetStorageFreed, then the files. A crash between them leaves bytes charged or
files on disk, never a file missing for a live sample; the same deletion called again finishes
(the aggregate decides nothing twice, the ledger frees a deletion once, removing a file is
idempotent).

Known limits: the uses come from a projection of other services' logs, so a job created on a version
a moment before the deletion may not be seen yet; a file is kept when another sample (any dataset) is
seen in the views holding the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelyard_blobs.blobs import BlobStore
from modelyard_dataset.app.loading import DatasetLoader, ledger_stream
from modelyard_dataset.domain.dataset import Dataset
from modelyard_dataset.domain.identity import dataset_of_sample
from modelyard_dataset.domain.uses import UsedVersion, VersionUser
from modelyard_events.caller import Caller
from modelyard_events.envelope import DomainEvent
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.datasets import DATASET_STREAM, STORAGE_STREAM, DatasetDeleted, SampleDeleted
from modelyard_events.schemas.manifest import parse_manifest
from modelyard_events.store.ports import EventStore

log = logging.getLogger(__name__)
_RETRIES = 5


class UsesAndHolders(Protocol):
    """The views' side of a deletion (projections/uses.py: DeletionReads)."""

    async def uses(self, dataset_id: str) -> dict[int, list[VersionUser]]:
        """Per used version of the dataset, its jobs and models."""
        ...

    async def held_elsewhere(
        self, sha256s: Sequence[str], dataset_id: str, sample_ids: Sequence[str]
    ) -> set[str]:
        """The files still held by samples other than those being deleted."""
        ...


@dataclass(frozen=True)
class Deletion:
    """What a deletion did: the samples that left, the bytes given back, the organization's usage."""

    dataset_id: str
    samples: int
    bytes_freed: int
    org_bytes_used: int


class DatasetLifecycle:
    """Description, archive, unarchive and deletions of datasets and samples."""

    def __init__(
        self, store: EventStore, blobs: BlobStore, load: DatasetLoader, reads: UsesAndHolders
    ) -> None:
        self._store, self._blobs, self._load, self._reads = store, blobs, load, reads

    async def describe(self, dataset_id: str, description: str, caller: Caller) -> Dataset:
        """Change the dataset's description."""
        return await self._change(dataset_id, lambda d: d.describe(description, caller.actor.subject), caller)

    async def archive(self, dataset_id: str, reason: str, caller: Caller) -> Dataset:
        """Make the dataset read-only."""
        return await self._change(dataset_id, lambda d: d.archive(caller.actor.subject, reason), caller)

    async def unarchive(self, dataset_id: str, reason: str, caller: Caller) -> Dataset:
        """Make the dataset writable again."""
        return await self._change(dataset_id, lambda d: d.unarchive(caller.actor.subject, reason), caller)

    async def delete_sample(self, sample_id: str, reason: str, caller: Caller) -> Deletion:
        """Delete one sample unless a used version holds it; give its bytes back, remove its file."""
        dataset_id = dataset_of_sample(sample_id)
        for attempt in range(1, _RETRIES + 1):
            dataset = await self._load.dataset(dataset_id)
            used = await self._used_versions(dataset, with_samples=True)
            events = dataset.delete_sample(sample_id, used, caller.actor.subject, reason)
            try:
                await self._append(dataset, events, caller)
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue
            deleted = dataset.apply_all(events).deleted_samples[sample_id]
            return await self._finish(dataset, deleted, caller)
        raise AssertionError("unreachable")

    async def delete_dataset(self, dataset_id: str, reason: str, caller: Caller) -> Deletion:
        """Delete the whole dataset unless a job or a model used one of its versions."""
        for attempt in range(1, _RETRIES + 1):
            dataset = await self._load.dataset(dataset_id, deleted_too=True)
            used = await self._used_versions(dataset, with_samples=False)
            events = dataset.delete(used, caller.actor.subject, reason)
            try:
                await self._append(dataset, events, caller)
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue
            after = dataset.apply_all(events)
            assert after.deleted is not None  # delete() decided it, now or the first time
            return await self._finish(after, after.deleted, caller)
        raise AssertionError("unreachable")

    async def _change(
        self, dataset_id: str, decide: Callable[[Dataset], list[DomainEvent]], caller: Caller
    ) -> Dataset:
        for attempt in range(1, _RETRIES + 1):
            dataset = await self._load.dataset(dataset_id)
            events = decide(dataset)
            try:
                await self._append(dataset, events, caller)
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue
            return dataset.apply_all(events)
        raise AssertionError("unreachable")

    async def _append(self, dataset: Dataset, events: list[DomainEvent], caller: Caller) -> None:
        if events:
            context = caller.context_for(dataset.org_id)
            await self._store.append(DATASET_STREAM, dataset.dataset_id, dataset.version, events, context)

    async def _used_versions(self, dataset: Dataset, *, with_samples: bool) -> list[UsedVersion]:
        """The dataset's published versions a job or model used; with the samples each holds (from its
        manifest, read only for used versions) when a single sample's deletion needs them."""
        uses: Mapping[int, list[VersionUser]] = await self._reads.uses(dataset.dataset_id)
        used: list[UsedVersion] = []
        for number, users in sorted(uses.items()):
            published = dataset.versions.get(number)
            if published is None or not users:
                continue
            sample_ids: frozenset[str] = frozenset()
            if with_samples:
                data = await self._blobs.read(published.manifest_sha256)
                manifest = parse_manifest(data, published.manifest_sha256)
                sample_ids = frozenset(s.sample_id for s in manifest.samples)
            used.append(UsedVersion(number, tuple(users), sample_ids))
        return used

    async def _finish(
        self, dataset: Dataset, deleted: SampleDeleted | DatasetDeleted, caller: Caller
    ) -> Deletion:
        """Give the deletion's bytes back on the ledger (once), then remove the files nothing else holds."""
        if isinstance(deleted, SampleDeleted):
            key, size, count = deleted.sample_id, deleted.size_bytes, 1
            files = {deleted.sample_id: deleted.sha256}
        else:
            key, size, count = dataset.dataset_id, deleted.size_bytes, deleted.samples
            files = {s.sample_id: s.sha256 for s in dataset.samples.values()}
        used_bytes = await self._free(dataset, key, size, caller)
        sample_ids = list(files) if isinstance(deleted, SampleDeleted) else []
        kept = await self._reads.held_elsewhere(sorted(set(files.values())), dataset.dataset_id, sample_ids)
        for sha256 in sorted(set(files.values()) - kept):
            await self._blobs.delete(sha256)
        if isinstance(deleted, DatasetDeleted):
            for published in dataset.versions.values():  # its manifests name this dataset alone
                await self._blobs.delete(published.manifest_sha256)
        return Deletion(dataset.dataset_id, count, size, used_bytes)

    async def _free(self, dataset: Dataset, deletion: str, size: int, caller: Caller) -> int:
        context = caller.context_for(dataset.org_id)
        for attempt in range(1, _RETRIES + 1):
            ledger = await self._load.ledger(dataset.org_id)
            freed = ledger.free(dataset.dataset_id, deletion, size)
            try:
                if freed:
                    stream = ledger_stream(dataset.org_id)
                    await self._store.append(STORAGE_STREAM, stream, ledger.version, freed, context)
            except ConcurrencyConflict:
                if attempt == _RETRIES:
                    raise
                continue  # an upload of the organization charged meanwhile: free against the new total
            return ledger.apply_all(freed).total_bytes
        raise AssertionError("unreachable")
