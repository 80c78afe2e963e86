"""The storage ledger's side of an upload: reconciling abandoned charges and giving a charge back.

The decisions are the ledger's and the dataset's (domain/storage.py, domain/dataset.py); this module
reads what they need and appends what they decide.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime

from modelyard_dataset.app.loading import DatasetLoader, ledger_stream
from modelyard_dataset.domain.storage import DatasetUploads, StorageLedger
from modelyard_events.envelope import CommandContext
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.datasets import DATASET_STREAM, STORAGE_STREAM
from modelyard_events.store.ports import EventStore

log = logging.getLogger(__name__)
_RETRIES = 5
_FENCES_PER_UPLOAD = 8  # other datasets an upload reconciles: its own cost stays bounded


class StorageCharges:
    """Appends the ledger's reconciliations and give-backs for the upload use case."""

    def __init__(self, store: EventStore, load: DatasetLoader) -> None:
        self._store, self._load = store, load

    async def abandoned_datasets(
        self, ledger: StorageLedger, current: str, now: datetime, context: CommandContext
    ) -> list[DatasetUploads]:
        """Other datasets of the organization with charges open for long, fenced where still needed."""
        # Other datasets with charges open for long; each still at the version such a charge named is
        # fenced first, so the crashed upload's SamplesAdded can never land after its charge is released.
        found: list[DatasetUploads] = []
        dataset_ids = sorted({c.dataset_id for c in ledger.abandoned(now)} - {current})
        for dataset_id in dataset_ids[:_FENCES_PER_UPLOAD]:
            other = await self._load.dataset(dataset_id, deleted_too=True)
            abandoned = ledger.to_fence(other.uploads, now)
            if abandoned is not None:
                with contextlib.suppress(ConcurrencyConflict):  # it moved anyway: decided either way
                    await self._store.append(
                        DATASET_STREAM, dataset_id, other.version, other.abandon_upload(abandoned), context
                    )
                other = await self._load.dataset(dataset_id, deleted_too=True)
            found.append(other.uploads)
        return found

    async def give_back(
        self, dataset_id: str, org_id: str, upload: str, error: BaseException, context: CommandContext
    ) -> None:
        """Release the upload's open charge after its samples failed to be recorded."""
        # Give the charge back; if even that fails, the log says so (the next upload reconciles it).
        for _ in range(_RETRIES):
            ledger = await self._load.ledger(org_id)
            dataset = await self._load.dataset(dataset_id, deleted_too=True)
            reason = f"the upload's samples were not recorded: {type(error).__name__}"
            released = ledger.give_back(dataset.uploads, upload, reason)
            if not released:
                return
            try:
                stream = ledger_stream(org_id)
                await self._store.append(STORAGE_STREAM, stream, ledger.version, released, context)
                return
            except ConcurrencyConflict:
                continue
        log.error("could not release the charge for upload %s of %s", upload, dataset_id)
