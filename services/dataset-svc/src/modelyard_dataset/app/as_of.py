"""Time travel in dataset-svc: a dataset as its log said it was at an instant.

The samples are counted, not listed: a dataset may hold hundreds of thousands, and the versions
published by then (each with its manifest's SHA-256) say exactly which samples each one held.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelyard_dataset.domain.dataset import Dataset
from modelyard_events.as_of import AsOfReader, AsOfResult, plain, recorded_by
from modelyard_events.schemas.datasets import DATASET_EVENTS, DatasetCreated
from modelyard_events.store.ports import EventStore


def dataset_as_of(store: EventStore) -> AsOfReader:
    """`dataset` for StateAsOf: its events recorded by the instant; None when it was not created yet."""

    async def read(dataset_id: str, at: datetime) -> AsOfResult | None:
        stored = recorded_by(await store.read_stream(dataset_id), at)
        if not stored or stored[0].type != DatasetCreated.type_name:  # a sample's stream, not a dataset
            return None
        dataset = Dataset.rebuild(dataset_id, (DATASET_EVENTS.decode(e) for e in stored))
        return AsOfResult(dataset.org_id, summary(dataset), len(stored), stored[-1].occurred_at)

    return read


def summary(dataset: Dataset) -> dict[str, Any]:
    """The dataset's facts, its versions in full, its samples counted."""
    return {
        "dataset_id": dataset.dataset_id,
        "org_id": dataset.org_id,
        "name": dataset.name,
        "ai_module": dataset.ai_module,
        "environment": dataset.environment,
        "description": dataset.description,
        "status": dataset.status,
        "label_schema": plain(dataset.label_schema),
        "created_by": dataset.created_by,
        "samples": len(dataset.samples),
        "samples_deleted": len(dataset.deleted_samples),
        "size_bytes": dataset.size_bytes,
        "versions": [plain(dataset.versions[n]) for n in sorted(dataset.versions)],
        "archived": plain(dataset.archived),
        "deleted": plain(dataset.deleted),
    }
