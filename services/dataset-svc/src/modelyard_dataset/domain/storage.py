"""The organization's dataset storage ledger: bytes charged against the plan's dataset data limit.

One stream per organization, one event per upload that added bytes (and one more if that upload then
failed and gave them back). Uploads of one organization race on the ledger's version, so two concurrent
uploads cannot both pass a limit that only one fits under. A charge is for the bytes an upload adds to
its dataset; bytes a dataset already holds (duplicates) are never charged again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from modelyard_events.domain_errors import QuotaExceeded
from modelyard_events.envelope import DomainEvent
from modelyard_events.plans import Plan, human_bytes
from modelyard_events.schemas.datasets import DatasetStorageCharged, DatasetStorageReleased


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

    @classmethod
    def rebuild(cls, org_id: str, events: Iterable[DomainEvent]) -> StorageLedger:
        """The ledger after its stored events (empty for an organization that stored nothing)."""
        ledger = cls(org_id)
        for event in events:
            ledger = ledger.apply(event)
        return ledger

    def charge(self, plan: Plan, dataset_id: str, upload_id: str, size_bytes: int) -> list[DomainEvent]:
        """DatasetStorageCharged, nothing (no new bytes), or QuotaExceeded saying how much is used,
        allowed and asked for."""
        if size_bytes == 0:
            return []
        limit = plan.dataset_bytes
        total = self.total_bytes + size_bytes
        if limit is not None and total > limit:
            raise QuotaExceeded(
                f"the {plan.name} plan allows {human_bytes(limit)} of dataset data per organization; "
                f"{self.org_id} stores {human_bytes(self.total_bytes)} and this upload adds "
                f"{human_bytes(size_bytes)} ({human_bytes(total - limit)} too much); nothing was stored. "
                "Upload fewer files, or move the organization to a plan with more dataset storage"
            )
        return [
            DatasetStorageCharged(
                org_id=self.org_id,
                dataset_id=dataset_id,
                upload_id=upload_id,
                size_bytes=size_bytes,
                total_bytes=total,
                limit_bytes=limit,
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

    def release(self, dataset_id: str, upload_id: str, size_bytes: int, reason: str) -> list[DomainEvent]:
        """DatasetStorageReleased: give back a charge whose upload recorded no samples."""
        if size_bytes == 0:
            return []
        return [
            DatasetStorageReleased(
                org_id=self.org_id,
                dataset_id=dataset_id,
                upload_id=upload_id,
                size_bytes=size_bytes,
                total_bytes=max(0, self.total_bytes - size_bytes),
                reason=reason,
            )
        ]

    def apply(self, event: DomainEvent) -> StorageLedger:
        """The ledger after one more event."""
        moved = replace(self, version=self.version + 1)
        if isinstance(event, DatasetStorageCharged | DatasetStorageReleased):
            return replace(moved, total_bytes=event.total_bytes)
        return moved
