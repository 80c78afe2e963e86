"""Reading aggregates from dataset-svc's store (the record, so commands always see their own writes)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from modelyard_dataset.domain.dataset import Dataset
from modelyard_dataset.domain.identity import dataset_of_sample
from modelyard_dataset.domain.sample import Sample
from modelyard_dataset.domain.storage import StorageLedger
from modelyard_events.schemas.datasets import DATASET_EVENTS
from modelyard_events.store.ports import EventStore

# Bounded by the samples they hold (a dataset of 100k samples is tens of MB in memory), not by count.
_CACHED_SAMPLES = 200_000


class DatasetLoader:
    """Loads datasets, samples and storage ledgers; caches what never changes (a dataset's task)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._tasks: dict[str, tuple[str, str]] = {}  # dataset id → (org, task): fixed at creation
        # The datasets loaded last, each at the version it was read at: a stream only grows, so the
        # next load reads only the events after it (a review checks its dataset's state on every call).
        self._recent: OrderedDict[str, Dataset] = OrderedDict()

    async def dataset(self, dataset_id: str, *, deleted_too: bool = False) -> Dataset:
        """The dataset (NotFound when it does not exist, or was deleted unless `deleted_too`)."""
        cached = self._recent.get(dataset_id)
        if cached is None:
            stored = await self.store.read_stream(dataset_id)
            dataset = Dataset.rebuild(dataset_id, (DATASET_EVENTS.decode(e) for e in stored))
        else:
            newer = await self.store.read_stream(dataset_id, cached.version)
            dataset = cached.apply_all(DATASET_EVENTS.decode(e) for e in newer)
        self._remember(dataset)
        self._tasks[dataset_id] = (dataset.org_id, dataset.label_schema.task)
        if not deleted_too:
            dataset.check_live()
        return dataset

    def _remember(self, dataset: Dataset) -> None:
        self._recent[dataset.dataset_id] = dataset
        self._recent.move_to_end(dataset.dataset_id)
        held = sum(len(d.samples) for d in self._recent.values())
        while len(self._recent) > 1 and held > _CACHED_SAMPLES:  # the one just loaded always stays
            _, oldest = self._recent.popitem(last=False)
            held -= len(oldest.samples)

    async def org_and_task(self, dataset_id: str) -> tuple[str, str]:
        """A dataset's organization and label task (immutable, so cached after the first load)."""
        if dataset_id not in self._tasks:
            await self.dataset(dataset_id, deleted_too=True)  # the caller's own load says it is deleted
        return self._tasks[dataset_id]

    async def sample(self, sample_id: str) -> tuple[str, Sample]:
        """A sample's organization and state; NotFound when its dataset or the sample does not exist."""
        dataset_id = dataset_of_sample(sample_id)
        org_id, task = await self.org_and_task(dataset_id)
        stored = await self.store.read_stream(sample_id)
        if not stored:
            (await self.dataset(dataset_id)).sample(sample_id)  # NotFound unless the dataset holds it
        return org_id, Sample.rebuild(sample_id, dataset_id, task, (DATASET_EVENTS.decode(e) for e in stored))

    async def samples(self, dataset: Dataset, sample_ids: Sequence[str]) -> list[Sample]:
        """Many samples of one dataset in one read (one snapshot of the store)."""
        streams = await self.store.read_streams(list(sample_ids))
        task = dataset.label_schema.task
        return [
            Sample.rebuild(sid, dataset.dataset_id, task, (DATASET_EVENTS.decode(e) for e in streams[sid]))
            for sid in sample_ids
        ]

    async def ledger(self, org_id: str) -> StorageLedger:
        """The organization's storage ledger (empty when it stored nothing yet)."""
        stored = await self.store.read_stream(ledger_stream(org_id))
        return StorageLedger.rebuild(org_id, (DATASET_EVENTS.decode(e) for e in stored))


def ledger_stream(org_id: str) -> str:
    """The stream id of an organization's storage ledger (stream ids are unique across the store)."""
    return f"storage:{org_id}"
