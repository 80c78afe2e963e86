"""The dataset lifecycle decided by the aggregates alone (no I/O): status, archive, deletions, uses."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from modelyard_dataset.domain.dataset import Dataset, IncomingFile
from modelyard_dataset.domain.storage import StorageLedger
from modelyard_dataset.domain.uses import UsedVersion, VersionUse, VersionUser, uses_in
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, NotFound
from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.bounds import REASON_MAX_CHARS
from modelyard_events.schemas.datasets import (
    DatasetArchived,
    DatasetDeleted,
    DatasetDescriptionChanged,
    DatasetStorageFreed,
    DatasetUnarchived,
    DatasetVersionPublished,
    ReadinessData,
    SampleDeleted,
)
from modelyard_events.schemas.jobs import JobCreated

JOB = VersionUser("job", "job-7")
MODEL = VersionUser("model", "mv-3")


def created() -> Dataset:
    events = Dataset.create(
        dataset_id="ds-1",
        org_id="acme",
        name="pets",
        ai_module="pet-finder",
        environment="dev",
        task="classification",
        classes=["cat", "dog"],
        created_by="ada",
        request_id=None,
    )
    return Dataset.rebuild("ds-1", events)


def with_samples(*contents: bytes) -> Dataset:
    dataset = created()
    files = [
        IncomingFile(f"f{i}.png", hashlib.sha256(c).hexdigest(), len(c), "image/png")
        for i, c in enumerate(contents)
    ]
    return dataset.apply_all(dataset.add_samples("upl-1", dataset.plan_upload(files)))


def published(dataset: Dataset) -> Dataset:
    event = DatasetVersionPublished(
        dataset_id=dataset.dataset_id,
        version=dataset.latest_version + 1,
        org_id=dataset.org_id,
        manifest_sha256="a" * 64,
        samples=len(dataset.samples),
        size_bytes=dataset.size_bytes,
        split_counts={"train": len(dataset.samples)},
        seed=0,
        train_fraction=0.8,
        val_fraction=0.1,
        readiness=ReadinessData(ready=True, checks=[]),
        published_by="ada",
    )
    return dataset.apply(event)


def archived(dataset: Dataset) -> Dataset:
    return dataset.apply_all(dataset.archive("ops", "season over"))


class TestStatus:
    def test_draft_until_the_first_published_version_then_active(self) -> None:
        dataset = with_samples(b"a")
        assert dataset.status == "draft"
        assert published(dataset).status == "active"

    def test_archive_then_unarchive_returns_to_what_the_versions_say(self) -> None:
        draft, active = with_samples(b"a"), published(with_samples(b"a"))
        assert archived(draft).status == "archived"
        back = archived(active)
        back = back.apply_all(back.unarchive("ops", "needed again"))
        assert back.status == "active"
        again = archived(draft)
        assert again.apply_all(again.unarchive("ops", "needed")).status == "draft"

    def test_the_status_survives_a_rebuild_from_the_events(self) -> None:
        dataset = with_samples(b"a")
        events = [*dataset.archive("ops", "done")]
        assert isinstance(events[0], DatasetArchived)
        rebuilt = Dataset.rebuild("ds-1", [*_events_of(dataset), *events])
        assert rebuilt.status == "archived"


def _events_of(dataset: Dataset) -> list[DomainEvent]:
    created_events = Dataset.create(
        dataset_id="ds-1",
        org_id="acme",
        name="pets",
        ai_module="pet-finder",
        environment="dev",
        task="classification",
        classes=["cat", "dog"],
        created_by="ada",
        request_id=None,
    )
    first = Dataset.rebuild("ds-1", created_events)
    files = [IncomingFile(s.filename, s.sha256, s.size_bytes, s.media_type) for s in dataset.samples.values()]
    return [*created_events, *first.add_samples("upl-1", first.plan_upload(files))]


class TestArchive:
    @pytest.mark.parametrize(
        "attempt",
        [
            lambda d: d.plan_upload([IncomingFile("x.png", "c" * 64, 3, "image/png")]),
            lambda d: d.describe("new words", "ops"),
            lambda d: d.delete_sample(next(iter(d.samples)), [], "ops", "mistake"),
            lambda d: d.check_writable("label its samples"),
        ],
        ids=["upload", "describe", "delete-sample", "label"],
    )
    def test_an_archived_dataset_refuses_every_change_naming_itself(
        self, attempt: Callable[[Dataset], object]
    ) -> None:
        dataset = archived(with_samples(b"a"))
        with pytest.raises(IllegalTransition, match=r"dataset ds-1 \(pets\) is archived.*unarchive"):
            attempt(dataset)

    def test_archiving_twice_or_unarchiving_a_live_one_is_refused(self) -> None:
        dataset = archived(with_samples(b"a"))
        with pytest.raises(IllegalTransition, match="archived already"):
            dataset.archive("ops", "again")
        with pytest.raises(IllegalTransition, match="not archived"):
            with_samples(b"a").unarchive("ops", "why")

    @pytest.mark.parametrize("reason", ["", "   ", "x" * (REASON_MAX_CHARS + 1)])
    def test_a_missing_or_oversized_reason_is_an_invalid_argument(self, reason: str) -> None:
        dataset = with_samples(b"a")
        for decide in (
            lambda: dataset.archive("ops", reason),
            lambda: dataset.delete_sample(next(iter(dataset.samples)), [], "ops", reason),
            lambda: dataset.delete([], "ops", reason),
        ):
            with pytest.raises(InvalidArgument) as refused:
                decide()
            assert "reason" in refused.value.problems

    def test_an_archived_dataset_can_still_be_deleted_whole(self) -> None:
        events = archived(with_samples(b"a")).delete([], "ops", "gone")
        assert isinstance(events[0], DatasetDeleted)


class TestDescription:
    def test_a_new_description_is_an_event_and_the_same_one_is_nothing(self) -> None:
        dataset = with_samples(b"a")
        events = dataset.describe("  Cats and dogs from camera 4  ", "ops")
        assert events == [
            DatasetDescriptionChanged(
                dataset_id="ds-1", description="Cats and dogs from camera 4", changed_by="ops"
            )
        ]
        described = dataset.apply_all(events)
        assert described.description == "Cats and dogs from camera 4"
        assert described.describe("Cats and dogs from camera 4", "ops") == []

    def test_an_oversized_description_is_refused(self) -> None:
        with pytest.raises(InvalidArgument, match="at most"):
            with_samples(b"a").describe("d" * (REASON_MAX_CHARS + 1), "ops")


class TestDeletingASample:
    def test_an_unused_sample_is_deleted_with_its_size_and_hash(self) -> None:
        dataset = published(with_samples(b"aa", b"bbb"))
        sample = next(s for s in dataset.samples.values() if s.size_bytes == 3)
        used = [UsedVersion(1, (), frozenset(dataset.samples))]  # version 1 holds it, nobody used it
        [event] = dataset.delete_sample(sample.sample_id, used, "ops", "blurry")
        assert event == SampleDeleted(
            dataset_id="ds-1",
            sample_id=sample.sample_id,
            sha256=sample.sha256,
            size_bytes=3,
            deleted_by="ops",
            reason="blurry",
        )
        after = dataset.apply(event)
        assert sample.sample_id not in after.samples
        assert after.size_bytes == 2
        with pytest.raises(NotFound):
            after.sample(sample.sample_id)

    def test_a_sample_in_a_used_version_is_refused_naming_the_version_job_and_model(self) -> None:
        dataset = published(published(with_samples(b"aa")))
        sample_id = next(iter(dataset.samples))
        used = [UsedVersion(2, (MODEL, JOB), frozenset({sample_id})), UsedVersion(1, (JOB,), frozenset())]
        with pytest.raises(IllegalTransition) as refused:
            dataset.delete_sample(sample_id, used, "ops", "blurry")
        message = str(refused.value)
        assert "version 2, used by job job-7 and model version mv-3" in message
        assert "version 1" not in message  # version 1 does not hold the sample
        assert sample_id in message

    def test_deleting_a_deleted_sample_again_decides_nothing(self) -> None:
        dataset = with_samples(b"aa")
        sample_id = next(iter(dataset.samples))
        after = dataset.apply_all(dataset.delete_sample(sample_id, [], "ops", "x"))
        assert after.delete_sample(sample_id, [], "ops", "x") == []

    def test_an_unknown_sample_is_not_found(self) -> None:
        with pytest.raises(NotFound, match="no sample ds-1:nope"):
            with_samples(b"aa").delete_sample("ds-1:nope", [], "ops", "x")

    def test_a_rebuild_leaves_the_deleted_sample_out(self) -> None:
        dataset = with_samples(b"aa", b"b")
        sample_id = next(iter(dataset.samples))
        events = [*_events_of(dataset), *dataset.delete_sample(sample_id, [], "ops", "x")]
        rebuilt = Dataset.rebuild("ds-1", events)
        assert sample_id not in rebuilt.samples
        assert sample_id in rebuilt.deleted_samples


class TestDeletingADataset:
    def test_an_unused_dataset_is_deleted_with_its_live_samples_bytes(self) -> None:
        dataset = published(with_samples(b"aa", b"bbb"))
        [event] = dataset.delete([UsedVersion(1, (), frozenset())], "ops", "duplicate of ds-2")
        assert event == DatasetDeleted(
            dataset_id="ds-1",
            org_id="acme",
            samples=2,
            size_bytes=5,
            deleted_by="ops",
            reason="duplicate of ds-2",
        )
        gone = dataset.apply(event)
        assert gone.status == "deleted"
        with pytest.raises(NotFound, match="deleted by ops: duplicate of ds-2"):
            gone.check_live()
        assert gone.delete([], "ops", "again") == []  # a retry decides nothing
        with pytest.raises(NotFound):
            gone.archive("ops", "x")

    def test_a_dataset_with_a_used_version_is_refused_naming_each_version_and_user(self) -> None:
        dataset = published(published(with_samples(b"aa")))
        used = [UsedVersion(2, (MODEL,), frozenset()), UsedVersion(1, (JOB,), frozenset())]
        with pytest.raises(IllegalTransition) as refused:
            dataset.delete(used, "ops", "cleanup")
        assert "version 1, used by job job-7; version 2, used by model version mv-3" in str(refused.value)

    def test_many_users_are_counted_after_the_first_three(self) -> None:
        users = tuple(VersionUser("job", f"job-{n}") for n in range(5))
        assert UsedVersion(1, users, frozenset()).describe().endswith("job job-2 (and 2 more)")


class TestGivingBytesBack:
    def test_a_deletion_frees_its_bytes_once(self) -> None:
        ledger = StorageLedger("acme", version=3, total_bytes=100)
        [freed] = ledger.free("ds-1", "ds-1:abc", 30)
        assert freed == DatasetStorageFreed(
            org_id="acme", dataset_id="ds-1", deletion="ds-1:abc", size_bytes=30, total_bytes=70
        )
        after = ledger.apply(freed)
        assert after.total_bytes == 70
        assert after.free("ds-1", "ds-1:abc", 30) == []  # the retry of the same deletion
        assert after.free("ds-1", "ds-1", 70)  # the whole dataset later is another deletion

    def test_never_below_zero(self) -> None:
        [freed] = StorageLedger("acme", total_bytes=10).free("ds-1", "ds-1", 30)
        assert isinstance(freed, DatasetStorageFreed)
        assert freed.total_bytes == 0


class TestUsesFromOtherServicesEvents:
    def _job(self, uri: str) -> JobCreated:
        return JobCreated(
            job_id="job-7",
            org_id="acme",
            name="n",
            ai_module="pet-finder",
            family="image_classifier",
            dataset_uri=uri,
            hyperparameters={},
            priority=50,
            created_by="ada",
        )

    def test_a_job_on_a_published_version_uses_it(self) -> None:
        assert uses_in(self._job("dataset://ds-1/2")) == [VersionUse("ds-1", 2, JOB, "acme")]

    def test_a_job_on_a_file_uses_no_version(self) -> None:
        assert uses_in(self._job("file:///data/digits.npz")) == []

    def test_other_events_use_nothing(self) -> None:
        assert uses_in(DatasetUnarchived(dataset_id="ds-1", unarchived_by="a", reason="r")) == []
