"""The storage ledger reconciles its charges with the datasets: a crash between an upload's charge and
its SamplesAdded leaks nothing for good, and a retry of the same upload is charged once. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard_dataset.domain.dataset import Dataset, IncomingFile
from modelyard_dataset.domain.storage import ABANDONED_AFTER, StorageLedger
from modelyard_events.envelope import DomainEvent
from modelyard_events.plans import plan_named
from modelyard_events.schemas.datasets import (
    DatasetCreated,
    DatasetStorageCharged,
    DatasetStorageReleased,
    DatasetStorageSettled,
    LabelSchemaData,
)

PLAN = plan_named("enterprise")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _dataset() -> Dataset:
    created = DatasetCreated(
        dataset_id="ds-1",
        org_id="acme",
        name="rows",
        ai_module="m",
        environment="dev",
        label_schema=LabelSchemaData(task="none"),
        created_by="ops",
    )
    return Dataset("ds-1").apply(created)


def _upload(dataset: Dataset, upload_id: str, *files: tuple[str, int]) -> list[DomainEvent]:
    plan = dataset.plan_upload([IncomingFile(f"{sha[:4]}.csv", sha, size, "text/csv") for sha, size in files])
    return dataset.add_samples(upload_id, plan)


def _charged(ledger: StorageLedger, dataset: Dataset, upload: str, size: int, at: datetime) -> StorageLedger:
    return ledger.apply_all(ledger.charge(PLAN, dataset.uploads, upload, size, at))


class TestAChargeIsSettledOrReleased:
    def test_a_charge_whose_samples_were_recorded_is_settled_and_stays_charged(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "u1", 100, T0)
        dataset = dataset.apply_all(_upload(dataset, "u1", ("a" * 64, 100)))

        decided = ledger.reconcile([dataset.uploads])

        assert [type(e) for e in decided] == [DatasetStorageSettled]
        after = ledger.apply_all(decided)
        assert (after.total_bytes, after.open_charges) == (100, {})

    def test_a_crash_before_the_samples_is_released_once_the_dataset_moved_past_the_charge(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "crashed", 100, T0)  # then the process died
        assert ledger.reconcile([dataset.uploads]) == []  # maybe still in flight: undecided
        ledger = _charged(ledger, dataset, "u2", 50, T0)  # another upload into the dataset, recorded
        dataset = dataset.apply_all(_upload(dataset, "u2", ("b" * 64, 50)))

        decided = ledger.reconcile([dataset.uploads])

        assert {(type(e), e.upload_id) for e in decided} == {  # type: ignore[attr-defined]
            (DatasetStorageReleased, "crashed"),
            (DatasetStorageSettled, "u2"),
        }
        assert ledger.apply_all(decided).total_bytes == 50

    def test_an_earlier_success_of_the_same_upload_id_does_not_settle_a_later_crashed_charge(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "u1", 100, T0)
        dataset = dataset.apply_all(_upload(dataset, "u1", ("a" * 64, 100)))
        ledger = ledger.apply_all(ledger.reconcile([dataset.uploads]))
        ledger = _charged(ledger, dataset, "u1", 70, T0)  # the same id, new files: then a crash
        dataset = dataset.apply_all(_upload(dataset, "u3", ("c" * 64, 5)))

        decided = ledger.reconcile([dataset.uploads])

        assert [type(e) for e in decided] == [DatasetStorageReleased]
        assert ledger.apply_all(decided).total_bytes == 100

    def test_an_untouched_dataset_is_fenced_only_after_the_charge_is_abandoned(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "crashed", 100, T0)

        assert ledger.to_fence(dataset.uploads, T0 + ABANDONED_AFTER / 2) is None
        assert ledger.to_fence(dataset.uploads, T0 + ABANDONED_AFTER + timedelta(seconds=1)) == "crashed"
        fenced = dataset.apply_all(dataset.abandon_upload("crashed"))
        assert [type(e) for e in ledger.reconcile([fenced.uploads])] == [DatasetStorageReleased]


class TestAnUploadIdIsChargedOnce:
    def test_a_retry_of_an_upload_whose_samples_were_not_recorded_is_not_charged_again(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "u1", 100, T0)  # crash before SamplesAdded

        assert ledger.charge(PLAN, dataset.uploads, "u1", 100, T0) == []

    def test_a_repeated_upload_after_its_samples_were_recorded_charges_nothing(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "u1", 100, T0)
        dataset = dataset.apply_all(_upload(dataset, "u1", ("a" * 64, 100)))
        again = dataset.plan_upload([IncomingFile("a.csv", "a" * 64, 100, "text/csv")])

        decided = ledger.charge(PLAN, dataset.uploads, "u1", again.bytes_added, T0)

        assert [type(e) for e in decided] == [DatasetStorageSettled]  # and no second charge
        assert ledger.apply_all(decided).total_bytes == 100

    def test_another_attempt_of_the_same_upload_with_other_bytes_replaces_the_open_charge(self) -> None:
        dataset = _dataset()
        ledger = _charged(StorageLedger("acme"), dataset, "u1", 100, T0)

        decided = ledger.charge(PLAN, dataset.uploads, "u1", 30, T0)

        assert [type(e) for e in decided] == [DatasetStorageReleased, DatasetStorageCharged]
        assert ledger.apply_all(decided).total_bytes == 30
