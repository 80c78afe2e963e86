"""Readiness: every check passes and fails on its own measurement, and says what to do when it fails."""

from __future__ import annotations

import pytest

from modelyard_dataset.domain.readiness import (
    ReadinessPolicy,
    VerifiedSample,
    readiness_report,
    verified_sample,
)
from modelyard_events.plans import human_bytes
from modelyard_events.schemas.datasets import (
    FAMILY_LABEL_TASKS,
    AnnotationData,
    BoxData,
    LabelSchemaData,
    ReadinessCheckData,
    ReadinessData,
    SplitName,
)
from modelyard_events.schemas.hyperparameters import FAMILIES

PETS = LabelSchemaData(task="classification", classes=["cat", "dog"])
VEHICLES = LabelSchemaData(task="detection", classes=["car", "bus"])
TABLE = LabelSchemaData(task="none", classes=[])
POLICY = ReadinessPolicy()
GB = 10**9


def sample(
    name: str | None = "cat", agreement: float = 1.0, annotators: int = 1, split: SplitName | None = None
) -> VerifiedSample:
    return VerifiedSample(name, agreement, annotators, split)


def pets(cats: int = 10, dogs: int = 10, split: SplitName | None = None) -> list[VerifiedSample]:
    return [sample("cat", split=split)] * cats + [sample("dog", split=split)] * dogs


def report(
    verified: list[VerifiedSample],
    schema: LabelSchemaData = PETS,
    org_bytes: int = GB,
    limit: int | None = 10 * GB,
    family: str | None = None,
) -> ReadinessData:
    return readiness_report(schema, verified, 300 * 10**6, org_bytes, limit, POLICY, family)


def check(data: ReadinessData, name: str) -> ReadinessCheckData:
    (found,) = [c for c in data.checks if c.name == name]
    return found


def test_a_balanced_agreed_dataset_within_plan_is_ready() -> None:
    result = report(pets(), family="image_classifier")
    assert result.ready
    assert [c.name for c in result.checks] == [
        "verified_samples",
        "samples_per_class",
        "class_balance",
        "label_agreement",
        "validation_split",
        "size_within_plan",
        "family_fits_schema",
    ]
    assert result.verified_per_class == {"cat": 10, "dog": 10}


def test_without_a_family_there_is_no_family_check() -> None:
    assert "family_fits_schema" not in [c.name for c in report(pets()).checks]


class TestVerifiedSamples:
    def test_none_verified_fails_with_what_to_do(self) -> None:
        result = check(report([], schema=VEHICLES), "verified_samples")
        assert not result.passed
        assert result.detail == "0 verified samples, needs 1; label samples and approve them in review"

    def test_a_classifier_needs_two(self) -> None:
        result = check(report([sample()]), "verified_samples")
        assert not result.passed
        assert "1 verified sample, needs 2 (a classifier needs at least 2, to hold some out)" in result.detail

    def test_one_is_enough_for_detection(self) -> None:
        assert check(report([sample(None)], schema=VEHICLES), "verified_samples").passed


class TestSamplesPerClass:
    def test_short_classes_are_listed(self) -> None:
        digits = LabelSchemaData(task="classification", classes=[str(d) for d in range(10)])
        verified = [sample(str(d)) for d in range(10) for _ in range(12 if d != 3 else 4) if d != 8]
        result = check(report(verified, schema=digits), "samples_per_class")
        assert not result.passed
        assert result.detail == (
            "class '3' has 4 verified samples, needs 10; class '8' has 0 verified samples, needs 10; "
            "label and approve more samples of these classes"
        )

    def test_long_lists_are_cut(self) -> None:
        many = LabelSchemaData(task="classification", classes=[f"c{i}" for i in range(12)])
        detail = check(report([], schema=many), "samples_per_class").detail
        assert "class 'c4' has 0 verified samples, needs 10; and 7 more;" in detail
        assert "'c5'" not in detail

    def test_enough_of_each_passes_naming_the_smallest(self) -> None:
        result = check(report(pets(cats=11, dogs=10)), "samples_per_class")
        assert result.passed
        assert result.detail == "every class has at least 10 verified samples (fewest: class 'dog' with 10)"

    def test_detection_counts_samples_with_a_box_of_the_class(self) -> None:
        car, bus = (
            BoxData(class_name="car", x=0, y=0, width=0.1, height=0.1),
            BoxData(class_name="bus", x=0.5, y=0.5, width=0.1, height=0.1),
        )
        verified = [verified_sample(AnnotationData(boxes=[car, car, bus]), 1.0, 1)] * 10
        verified += [verified_sample(AnnotationData(boxes=[car]), 1.0, 1)] * 5
        verified += [verified_sample(AnnotationData(boxes=[]), 1.0, 1)]
        result = report(verified, schema=VEHICLES)
        assert result.verified_per_class == {"car": 15, "bus": 10}
        assert check(result, "samples_per_class").passed


class TestClassBalance:
    def test_a_rare_class_fails_with_the_ratio(self) -> None:
        result = check(report(pets(cats=200, dogs=10)), "class_balance")
        assert not result.passed
        assert result.detail == (
            "smallest class 'dog' has 10, largest 'cat' has 200: ratio 0.05 (needs ≥ 0.10); "
            "label and approve more samples of 'dog'"
        )

    def test_a_ratio_at_the_threshold_passes(self) -> None:
        assert check(report(pets(cats=100, dogs=10)), "class_balance").passed

    def test_no_verified_samples_is_not_balanced(self) -> None:
        result = check(report([]), "class_balance")
        assert (result.passed, result.detail) == (False, "not measurable: no class has verified samples yet")

    def test_task_none_skips_classes(self) -> None:
        result = report([sample(None)] * 3, schema=TABLE, family="tabular_regressor")
        assert result.ready
        assert check(result, "class_balance").detail == "not applicable: task none has no classes"
        assert result.verified_per_class == {}


class TestLabelAgreement:
    def test_low_mean_agreement_fails(self) -> None:
        verified = [*pets(), sample("cat", 0.5, 2), sample("dog", 0.8, 3)]
        result = check(report(verified), "label_agreement")
        assert not result.passed
        assert result.detail.startswith("mean agreement 0.65 over 2 samples with 2 or more annotators")
        assert "relabel or reject the disputed samples" in result.detail

    def test_single_annotator_samples_are_not_counted(self) -> None:
        verified = [sample("cat", 0.0, 1), sample("cat", 0.9, 2), sample("dog", 0.9, 2)]
        result = check(report(verified), "label_agreement")
        assert result.passed
        assert "mean agreement 0.90 over 2 samples" in result.detail

    def test_without_double_labels_it_is_not_measured(self) -> None:
        result = check(report([sample("cat", 0.2, 1)]), "label_agreement")
        assert (result.passed, result.detail) == (True, "not measured: no sample has 2 or more annotators")


class TestValidationSplit:
    def test_the_working_set_is_checked_when_published(self) -> None:
        result = check(report(pets()), "validation_split")
        assert (result.passed, result.detail) == (True, "computed when published")

    def test_an_empty_val_split_fails(self) -> None:
        result = check(report(pets(split="train")), "validation_split")
        assert not result.passed
        assert (
            result.detail
            == "0 samples in the val split (needs ≥ 1); raise val_fraction or verify more samples"
        )

    def test_a_val_sample_passes(self) -> None:
        assert check(report([*pets(split="train"), sample(split="val")]), "validation_split").passed


class TestSizeWithinPlan:
    def test_over_the_limit_fails_in_human_units(self) -> None:
        result = check(report(pets(), org_bytes=10_500_000_000), "size_within_plan")
        assert not result.passed
        assert result.detail == (
            "the organization stores 10.5 GB of dataset data (this dataset: 300 MB); "
            "the plan allows 10 GB: delete unused datasets or move to a larger plan"
        )

    def test_exactly_the_limit_passes(self) -> None:
        assert check(report(pets(), org_bytes=10 * GB), "size_within_plan").passed

    def test_no_limit_passes(self) -> None:
        result = check(report(pets(), org_bytes=10**15, limit=None), "size_within_plan")
        assert result.passed
        assert result.detail.endswith("the plan sets no limit")

    @pytest.mark.parametrize(
        ("size", "text"),
        [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (999_960_000, "1 GB"), (2 * 10**15, "2 PB")],
    )
    def test_bytes_read_in_decimal_units(self, size: int, text: str) -> None:
        assert human_bytes(size) == text


class TestFamilyFitsSchema:
    def test_every_trainable_family_has_a_task(self) -> None:
        assert set(FAMILY_LABEL_TASKS) == set(FAMILIES)

    def test_an_image_classifier_needs_classification(self) -> None:
        result = check(
            report([sample(None)] * 3, schema=TABLE, family="image_classifier"), "family_fits_schema"
        )
        assert not result.passed
        assert result.detail == (
            "image_classifier needs a dataset of task classification; this one is none: "
            "choose a family for none or create a dataset of task classification"
        )

    def test_tabular_families_need_task_none(self) -> None:
        assert not check(report(pets(), family="tabular_classifier"), "family_fits_schema").passed

    def test_an_unknown_family_lists_the_known_ones(self) -> None:
        result = check(report(pets(), family="yolo"), "family_fits_schema")
        assert not result.passed
        assert "unknown family 'yolo'; choose one of image_classifier" in result.detail


def test_one_failed_check_makes_the_report_not_ready() -> None:
    result = report(pets(), org_bytes=11 * GB)
    assert not result.ready
    assert [c.name for c in result.checks if not c.passed] == ["size_within_plan"]
