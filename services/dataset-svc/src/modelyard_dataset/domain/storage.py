"""The organization's dataset storage ledger: bytes charged against the plan's dataset data limit.

One stream per organization, one event per upload that added bytes. Uploads of one organization race
on the ledger's version, so two concurrent uploads cannot both pass a limit that only one fits under.
A charge is for the bytes an upload adds to its dataset; bytes a dataset already holds (duplicates)
are never charged again.

The charge and the upload's SamplesAdded are two appends (the store appends to one stream at a time),
so a charge stays *open* until the ledger learns its fate from the dataset (`reconcile`): settled when
the dataset recorded the upload's samples at the version the charge names, released when the dataset
moved past that version without them (that append can never succeed any more). A retry of an upload
whose open charge is still undecided is not charged again (`charge`). A deletion gives its bytes back
once (`free`, keyed by what was deleted). Docs: docs/datasets.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from modelyard_events.domain_errors import QuotaExceeded
from modelyard_events.envelope import DomainEvent
from modelyard_events.plans import Plan, human_bytes
from modelyard_events.schemas.datasets import (
    DatasetStorageCharged,
    DatasetStorageFreed,
    DatasetStorageReleased,
    DatasetStorageSettled,
)

# An open charge older than this whose upload still recorded nothing is abandoned (its dataset is
# fenced at the charge's version, then the charge released): an upload appends its samples
# milliseconds after its charge, so only a crashed process leaves one this old.
ABANDONED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class OpenCharge:
    """A charge whose upload's samples are not known to be recorded yet."""

    dataset_id: str
    upload_id: str
    size_bytes: int
    dataset_version: int  # the upload's SamplesAdded is appended at exactly this dataset version
    charged_at: datetime


@dataclass(frozen=True)
class DatasetUploads:
    """What the ledger needs to know of a dataset: its version, and where each upload was recorded."""

    dataset_id: str
    version: int
    recorded: frozenset[tuple[str, int]]  # (upload id, dataset version its SamplesAdded was appended at)


@dataclass(frozen=True)
class StorageRoom:
    """Bytes an organization may still store under its plan (`left_bytes` None: the plan sets no limit)."""

    org_id: str
    plan_name: str
    left_bytes: int | None

    def check(self, size_bytes: int) -> None:
        """QuotaExceeded when `size_bytes` more do not fit: an upload is refused before it stages them."""
        if self.left_bytes is not None and size_bytes > self.left_bytes:
            raise QuotaExceeded(
                f"the {self.plan_name} plan has room for {human_bytes(self.left_bytes)} more dataset data "
                f"in {self.org_id} and this upload needs at least {human_bytes(size_bytes)} (counted before "
                "duplicates are known); nothing was stored. Upload fewer files, or move the organization "
                "to a plan with more dataset storage"
            )


@dataclass(frozen=True)
class StorageLedger:
    """How many dataset bytes an organization stores, and which uploads were charged."""

    org_id: str
    version: int = 0
    total_bytes: int = 0
    open_charges: Mapping[tuple[str, str], OpenCharge] = field(default_factory=dict)  # (dataset, upload)
    freed: frozenset[tuple[str, str]] = frozenset()  # (dataset, deletion) whose bytes were given back

    @classmethod
    def rebuild(cls, org_id: str, events: Iterable[DomainEvent]) -> StorageLedger:
        """The ledger after its stored events (empty for an organization that stored nothing)."""
        return cls(org_id).apply_all(events)

    def charge(
        self, plan: Plan, dataset: DatasetUploads, upload_id: str, size_bytes: int, now: datetime
    ) -> list[DomainEvent]:
        """DatasetStorageCharged, nothing (no new bytes, or a retry of an upload charged already), or
        QuotaExceeded saying how much is used, allowed and asked for.

        The dataset's open charges are reconciled first (those events lead the list): an open charge
        of the same upload left after that is one whose samples may still be appended at the dataset's
        current version, which this attempt targets too, so only one of the two can record.
        """
        events = self.reconcile([dataset])
        ledger = self.apply_all(events)
        earlier = ledger.open_charges.get((dataset.dataset_id, upload_id))
        if earlier is not None and earlier.size_bytes == size_bytes:
            return events  # the same upload again (a retry after a crash): charged once
        if earlier is not None:
            replaced = ledger._released(earlier, "another attempt of the same upload replaced it")
            events, ledger = [*events, *replaced], ledger.apply_all(replaced)
        if size_bytes == 0:
            return events
        limit = plan.dataset_bytes
        total = ledger.total_bytes + size_bytes
        if limit is not None and total > limit:
            raise QuotaExceeded(
                f"the {plan.name} plan allows {human_bytes(limit)} of dataset data per organization; "
                f"{self.org_id} stores {human_bytes(ledger.total_bytes)} and this upload adds "
                f"{human_bytes(size_bytes)} ({human_bytes(total - limit)} too much); nothing was stored. "
                "Upload fewer files, or move the organization to a plan with more dataset storage"
            )
        charged = DatasetStorageCharged(
            org_id=self.org_id,
            dataset_id=dataset.dataset_id,
            upload_id=upload_id,
            size_bytes=size_bytes,
            total_bytes=total,
            limit_bytes=limit,
            dataset_version=dataset.version,
            charged_at=now,
        )
        return [*events, charged]

    def reconcile(self, datasets: Iterable[DatasetUploads]) -> list[DomainEvent]:
        """Settle each open charge whose upload the dataset recorded; release each whose dataset moved
        past the charge's version without it. Charges still undecided stay open."""
        events: list[DomainEvent] = []
        ledger = self
        for dataset in datasets:
            for charge in [c for c in self.open_charges.values() if c.dataset_id == dataset.dataset_id]:
                if (charge.upload_id, charge.dataset_version) in dataset.recorded:
                    decided: list[DomainEvent] = [
                        DatasetStorageSettled(
                            org_id=self.org_id, dataset_id=charge.dataset_id, upload_id=charge.upload_id
                        )
                    ]
                elif dataset.version > charge.dataset_version:
                    decided = ledger._released(charge, "the upload's samples were never recorded")
                else:
                    continue
                events += decided
                ledger = ledger.apply_all(decided)
        return events

    def abandoned(self, now: datetime) -> list[OpenCharge]:
        """Open charges older than ABANDONED_AFTER: their datasets are worth reading (and fencing)."""
        return [c for c in self.open_charges.values() if now - c.charged_at > ABANDONED_AFTER]

    def to_fence(self, dataset: DatasetUploads, now: datetime) -> str | None:
        """The upload id of an abandoned charge still undecided at the dataset's current version (the
        dataset is then fenced with DatasetUploadAbandoned at that version), or None."""
        for charge in self.abandoned(now):
            undecided = (charge.upload_id, charge.dataset_version) not in dataset.recorded
            if (
                charge.dataset_id == dataset.dataset_id
                and charge.dataset_version == dataset.version
                and undecided
            ):
                return charge.upload_id
        return None

    def give_back(self, dataset: DatasetUploads, upload_id: str, reason: str) -> list[DomainEvent]:
        """DatasetStorageReleased for the upload's open charge when its samples were not recorded
        (the upload failed after its charge); nothing when there is no such charge."""
        charge = self.open_charges.get((dataset.dataset_id, upload_id))
        if charge is None or (upload_id, charge.dataset_version) in dataset.recorded:
            return []
        return self._released(charge, reason)

    def free(self, dataset_id: str, deletion: str, size_bytes: int) -> list[DomainEvent]:
        """DatasetStorageFreed giving a deletion's bytes back; nothing when it was given back already
        (a deletion retried after its ledger append failed frees once)."""
        if (dataset_id, deletion) in self.freed or size_bytes <= 0:
            return []
        return [
            DatasetStorageFreed(
                org_id=self.org_id,
                dataset_id=dataset_id,
                deletion=deletion,
                size_bytes=size_bytes,
                total_bytes=max(0, self.total_bytes - size_bytes),
            )
        ]

    def room_left(self, plan: Plan) -> StorageRoom:
        """What the organization may still store; QuotaExceeded when it is already at its plan's limit
        (nothing more fits)."""
        limit = plan.dataset_bytes
        if limit is not None and self.total_bytes >= limit:
            raise QuotaExceeded(
                f"the {plan.name} plan allows {human_bytes(limit)} of dataset data per organization and "
                f"{self.org_id} stores {human_bytes(self.total_bytes)} already; nothing more can be "
                "uploaded until the organization moves to a plan with more dataset storage"
            )
        return StorageRoom(self.org_id, plan.name, None if limit is None else limit - self.total_bytes)

    def _released(self, charge: OpenCharge, reason: str) -> list[DomainEvent]:
        return [
            DatasetStorageReleased(
                org_id=self.org_id,
                dataset_id=charge.dataset_id,
                upload_id=charge.upload_id,
                size_bytes=charge.size_bytes,
                total_bytes=max(0, self.total_bytes - charge.size_bytes),
                reason=reason,
            )
        ]

    def apply_all(self, events: Iterable[DomainEvent]) -> StorageLedger:
        """The ledger after several more events."""
        ledger = self
        for event in events:
            ledger = ledger.apply(event)
        return ledger

    def apply(self, event: DomainEvent) -> StorageLedger:
        """The ledger after one more event."""
        moved = replace(self, version=self.version + 1)
        if isinstance(event, DatasetStorageCharged):
            moved = replace(moved, total_bytes=event.total_bytes)
            if event.dataset_version is None or event.charged_at is None:
                return moved  # recorded before charges were reconciled: stands as it is
            charge = OpenCharge(
                event.dataset_id, event.upload_id, event.size_bytes, event.dataset_version, event.charged_at
            )
            return replace(
                moved, open_charges={**self.open_charges, (event.dataset_id, event.upload_id): charge}
            )
        if isinstance(event, DatasetStorageFreed):
            return replace(
                moved, total_bytes=event.total_bytes, freed=self.freed | {(event.dataset_id, event.deletion)}
            )
        if isinstance(event, DatasetStorageReleased):
            moved = replace(moved, total_bytes=event.total_bytes)
        if isinstance(event, DatasetStorageReleased | DatasetStorageSettled):
            key = (event.dataset_id, event.upload_id)
            return replace(moved, open_charges={k: c for k, c in self.open_charges.items() if k != key})
        return moved
