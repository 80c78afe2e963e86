"""The Dataset, Sample and StorageLedger aggregates decide events and refuse what the rules forbid."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from modelyard_dataset.domain.dataset import Dataset, IncomingFile
from modelyard_dataset.domain.sample import Sample, SampleState
from modelyard_dataset.domain.storage import DatasetUploads, StorageLedger
from modelyard_events.domain_errors import IllegalTransition, InvalidArgument, InvalidFields, QuotaExceeded
from modelyard_events.plans import plan_named
from modelyard_events.schemas.datasets import SAMPLES_PER_EVENT, AnnotationData

CLASSES = ["cat", "dog"]


def created(**overrides: object) -> Dataset:
    fields: dict[str, object] = {
        "dataset_id": "ds-1",
        "org_id": "acme",
        "name": "pets",
        "ai_module": "pet-finder",
        "environment": "dev",
        "task": "classification",
        "classes": CLASSES,
        "created_by": "ada",
        "request_id": None,
    }
    fields.update(overrides)
    events = Dataset.create(**fields)  # type: ignore[arg-type]
    return Dataset.rebuild("ds-1", events)


def incoming(name: str, content: bytes) -> IncomingFile:
    return IncomingFile(name, hashlib.sha256(content).hexdigest(), len(content), "image/png")


class TestCreatingADataset:
    def test_records_the_schema_module_and_environment(self) -> None:
        dataset = created()
        assert (dataset.org_id, dataset.ai_module, dataset.environment) == ("acme", "pet-finder", "dev")
        assert dataset.label_schema.classes == CLASSES
        assert dataset.version == 1

    def test_reports_every_wrong_field_at_once(self) -> None:
        with pytest.raises(InvalidFields) as refused:
            created(name=" ", ai_module="Pet Finder", environment="qa", classes=["cat"])
        assert {"name", "ai_module", "environment"} <= set(refused.value.problems)
        assert any(field.startswith("label_schema") for field in refused.value.problems)

    def test_ids_longer_than_an_event_holds_are_refused_as_arguments(self) -> None:
        with pytest.raises(InvalidFields) as refused:
            created(org_id="o" * 201, request_id="r" * 10_000)
        assert refused.value.problems == {
            "org_id": "must be at most 200 characters; got 201",
            "request_id": "must be at most 200 characters; got 10,000",
        }


class TestUploadingSamples:
    def test_the_same_bytes_are_one_sample_within_and_across_uploads(self) -> None:
        dataset = created()
        plan = dataset.plan_upload(
            [incoming("a.png", b"A"), incoming("a-copy.png", b"A"), incoming("b.png", b"B")]
        )
        assert [duplicate for _, _, duplicate in plan.outcome] == [False, True, False]
        assert plan.bytes_added == 2
        dataset = dataset.apply(dataset.add_samples("u1", plan)[0])
        again = dataset.plan_upload([incoming("b-again.png", b"B")])
        assert again.added == []
        assert again.outcome[0][2]
        assert dataset.add_samples("u2", again) == []

    def test_large_uploads_are_recorded_in_events_of_at_most_samples_per_event(self) -> None:
        dataset = created()
        plan = dataset.plan_upload(
            [incoming(f"{i}.png", str(i).encode()) for i in range(2 * SAMPLES_PER_EVENT + 5)]
        )
        sizes = [len(e.samples) for e in dataset.add_samples("u1", plan)]  # type: ignore[attr-defined]
        assert sizes == [SAMPLES_PER_EVENT, SAMPLES_PER_EVENT, 5]

    def test_an_unpublished_version_is_refused_naming_what_exists(self) -> None:
        with pytest.raises(IllegalTransition, match="none is published yet"):
            created().published(1)


class TestLabelingAndReviewing:
    def sample(self) -> Sample:
        return Sample("ds-1:" + "0" * 24, "ds-1", "classification")

    def test_a_label_makes_it_labeled_and_a_new_label_reopens_a_reviewed_sample(self) -> None:
        sample = self.sample()
        sample = sample.apply(sample.label("ann", AnnotationData(class_name="cat"))[0])
        assert sample.state is SampleState.LABELED
        sample = sample.apply(sample.approve("rev", "")[0])
        assert sample.state is SampleState.VERIFIED
        assert sample.quality == pytest.approx(0.8)
        sample = sample.apply(sample.label("ann", AnnotationData(class_name="dog"))[0])
        assert sample.state is SampleState.LABELED

    def test_reviewing_an_unlabeled_or_reviewed_sample_is_refused(self) -> None:
        sample = self.sample()
        with pytest.raises(IllegalTransition, match="no label yet"):
            sample.approve("rev", "")
        sample = sample.apply(sample.label("ann", AnnotationData(class_name="cat"))[0])
        sample = sample.apply(sample.reject("rev", "blurry")[0])
        with pytest.raises(IllegalTransition, match="already rejected"):
            sample.approve("rev-2", "")

    def test_rejecting_needs_a_reason_and_approving_needs_a_consensus(self) -> None:
        sample = self.sample()
        for who, cls in (("a", "cat"), ("b", "dog")):
            sample = sample.apply(sample.label(who, AnnotationData(class_name=cls))[0])
        with pytest.raises(InvalidArgument, match="reason"):
            sample.reject("rev", "  ")
        with pytest.raises(IllegalTransition, match="no consensus"):
            sample.approve("rev", "")

    def test_samples_of_a_schema_without_labels_are_approved_as_they_are(self) -> None:
        sample = Sample("ds-1:" + "1" * 24, "ds-1", "none")
        approved = sample.apply(sample.approve("rev", "looks complete")[0])
        assert approved.state is SampleState.VERIFIED
        assert approved.quality == pytest.approx(0.8)


class TestTheStorageLedger:
    def test_charges_until_the_plan_limit_then_refuses_saying_how_much(self) -> None:
        plan, now = plan_named("enterprise"), datetime(2026, 1, 1, tzinfo=UTC)
        ledger = StorageLedger("acme")
        ledger = ledger.apply_all(
            ledger.charge(plan, DatasetUploads("ds-1", 1, frozenset()), "u1", 9 * 10**9, now)
        )
        ds1 = DatasetUploads("ds-1", 2, frozenset({("u1", 1)}))
        ledger = ledger.apply_all(ledger.reconcile([ds1]))  # u1's samples were recorded: settled
        with pytest.raises(QuotaExceeded, match=r"allows 10 GB.*stores 9 GB.*adds 2 GB"):
            ledger.charge(plan, ds1, "u2", 2 * 10**9, now)
        assert ledger.charge(plan, ds1, "u1", 0, now) == []  # duplicates add no bytes
        assert ledger.charge(plan_named("professional"), ds1, "u3", 50 * 10**9, now) != []

    def test_a_give_back_returns_a_failed_uploads_bytes(self) -> None:
        ledger, ds1 = StorageLedger("acme"), DatasetUploads("ds-1", 1, frozenset())
        now = datetime(2026, 1, 1, tzinfo=UTC)
        ledger = ledger.apply_all(ledger.charge(plan_named("enterprise"), ds1, "u1", 700, now))
        ledger = ledger.apply_all(ledger.give_back(ds1, "u1", "the samples were not recorded"))
        assert ledger.total_bytes == 0
        assert ledger.give_back(ds1, "u1", "again") == []  # given back once


class TestWhatADatasetHolds:
    def test_a_classification_dataset_refuses_tables_naming_the_file(self) -> None:
        table = IncomingFile("labels.csv", "a" * 64, 10, "text/csv")
        with pytest.raises(InvalidFields) as refused:
            created().plan_upload([incoming("a.png", b"A"), table])
        assert list(refused.value.problems) == ["files.labels.csv"]
        assert "task is none" in refused.value.message

    def test_a_dataset_without_labels_holds_tables(self) -> None:
        table = IncomingFile("rows.csv", "a" * 64, 10, "text/csv")
        plan = created(task="none", classes=[]).plan_upload([table])
        assert len(plan.added) == 1


class TestMediaForTheFamily:
    def test_an_image_classifier_version_with_videos_is_not_ready(self) -> None:
        from modelyard_dataset.domain.versions import with_media_check
        from modelyard_events.schemas.datasets import ReadinessData

        ready = ReadinessData(ready=True, checks=[])
        refused = with_media_check(ready, ["image/png", "video/mp4"], "image_classifier")
        assert not refused.ready
        assert "video/mp4" in refused.checks[-1].detail
        assert with_media_check(ready, ["image/png"], "image_classifier").ready
        assert with_media_check(ready, ["video/mp4"], None) == ready


def test_an_organization_at_its_limit_has_no_room_for_any_upload() -> None:
    plan = plan_named("enterprise")
    full = StorageLedger("acme", total_bytes=10 * 10**9)
    with pytest.raises(QuotaExceeded, match="nothing more can be uploaded"):
        full.room_left(plan)
    assert StorageLedger("acme", total_bytes=10 * 10**9 - 1).room_left(plan).left_bytes == 1
    assert StorageLedger("acme", total_bytes=10**12).room_left(plan_named("professional")).left_bytes is None


def test_request_ids_of_two_organizations_never_give_the_same_dataset() -> None:
    from modelyard_dataset.domain.identity import dataset_id_for

    assert dataset_id_for("a/b", "c") != dataset_id_for("a", "b/c")
    assert dataset_id_for("acme", "r-1") == dataset_id_for("acme", "r-1")
