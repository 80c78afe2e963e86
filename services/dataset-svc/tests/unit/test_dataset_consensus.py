"""The consensus rule: plurality for classes, box-F1 medoid for detection; quality from agreement, review."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard_dataset.domain.consensus import Consensus, box_agreement, consensus, iou, quality_score
from modelyard_events.schemas.datasets import AnnotationData, BoxData


def cls(name: str) -> AnnotationData:
    return AnnotationData(class_name=name)


def box(x: float, y: float, width: float = 0.2, height: float = 0.2, name: str = "car") -> BoxData:
    return BoxData(class_name=name, x=x, y=y, width=width, height=height)


def boxes(*items: BoxData) -> AnnotationData:
    return AnnotationData(boxes=list(items))


class TestClassificationConsensus:
    def test_no_labels_no_consensus(self) -> None:
        assert consensus("classification", {}) == Consensus(None, 0.0, 0)

    def test_a_single_annotator_is_the_consensus(self) -> None:
        assert consensus("classification", {"ann": cls("cat")}) == Consensus(cls("cat"), 1.0, 1)

    def test_the_majority_class_wins_with_its_share(self) -> None:
        result = consensus("classification", {"a": cls("cat"), "b": cls("dog"), "c": cls("cat")})
        assert result == Consensus(cls("cat"), pytest.approx(2 / 3), 3)  # type: ignore[arg-type]

    def test_a_plurality_wins_without_a_majority(self) -> None:
        labels = {"a": cls("cat"), "b": cls("cat"), "c": cls("dog"), "d": cls("emu")}
        assert consensus("classification", labels) == Consensus(cls("cat"), 0.5, 4)

    def test_a_tie_at_the_top_has_no_consensus(self) -> None:
        assert consensus("classification", {"a": cls("cat"), "b": cls("dog")}) == Consensus(None, 0.5, 2)

    def test_a_tie_below_the_top_does_not_matter(self) -> None:
        labels = {"a": cls("cat"), "b": cls("cat"), "c": cls("cat"), "d": cls("dog"), "e": cls("emu")}
        assert consensus("classification", labels) == Consensus(cls("cat"), 0.6, 5)


class TestBoxAgreement:
    def test_iou_of_identical_disjoint_and_half_overlapping_boxes(self) -> None:
        assert iou(box(0.1, 0.1), box(0.1, 0.1)) == pytest.approx(1.0)
        assert iou(box(0.0, 0.0), box(0.5, 0.5)) == 0.0
        assert iou(box(0.0, 0.0, 0.4), box(0.2, 0.0, 0.4)) == pytest.approx(1 / 3)

    def test_boxes_touching_at_an_edge_do_not_overlap(self) -> None:
        assert iou(box(0.0, 0.0), box(0.2, 0.0)) == 0.0

    def test_both_empty_agree_fully_one_empty_not_at_all(self) -> None:
        assert box_agreement([], []) == 1.0
        assert box_agreement([box(0.1, 0.1)], []) == 0.0

    def test_iou_exactly_at_the_threshold_matches(self) -> None:
        # IoU = 0.5 exactly: 0.5-wide box inside a 1.0-wide one of the same height
        whole, half = box(0.0, 0.0, 1.0, 0.5), box(0.0, 0.0, 0.5, 0.5)
        assert iou(whole, half) == 0.5
        assert box_agreement([whole], [half]) == 1.0

    def test_iou_just_below_the_threshold_does_not_match(self) -> None:
        assert box_agreement([box(0.0, 0.0, 1.0, 0.5)], [box(0.0, 0.0, 0.49, 0.5)]) == 0.0

    def test_boxes_of_different_classes_never_match(self) -> None:
        assert box_agreement([box(0.1, 0.1)], [box(0.1, 0.1, name="bus")]) == 0.0

    def test_f1_counts_each_box_at_most_once(self) -> None:
        # two annotators' boxes on one object: only one of the pair can match the single box
        assert box_agreement([box(0.1, 0.1), box(0.11, 0.1)], [box(0.1, 0.1)]) == pytest.approx(2 / 3)

    def test_greedy_matching_prefers_the_higher_iou(self) -> None:
        # the first box overlaps both others equally (IoU 0.6); the second only one, exactly (IoU 1):
        # matching the exact pair first leaves a partner for the first box, in input order it would not
        first = [box(0.1, 0.0, 0.4, 0.4), box(0.2, 0.0, 0.4, 0.4)]
        second = [box(0.2, 0.0, 0.4, 0.4), box(0.0, 0.0, 0.4, 0.4)]
        assert box_agreement(first, second) == 1.0

    @given(st.lists(st.tuples(st.floats(0, 0.5), st.floats(0, 0.5)), max_size=5), st.data())
    def test_agreement_is_symmetric_and_within_0_and_1(
        self, corners: list[tuple[float, float]], data: st.DataObject
    ) -> None:
        first = [box(x, y) for x, y in corners]
        second = [box(x, y) for x, y in data.draw(st.lists(st.tuples(st.floats(0, 0.5), st.floats(0, 0.5))))]
        score = box_agreement(first, second)
        assert 0.0 <= score <= 1.0
        assert score == pytest.approx(box_agreement(second, first))
        assert box_agreement(first, first) == 1.0


class TestDetectionConsensus:
    def test_a_single_annotator_is_the_consensus(self) -> None:
        label = boxes(box(0.1, 0.1))
        assert consensus("detection", {"a": label}) == Consensus(label, 1.0, 1)

    def test_the_medoid_is_the_annotation_closest_to_all_others(self) -> None:
        careful = boxes(box(0.1, 0.1), box(0.6, 0.6))
        partial = boxes(box(0.1, 0.1))
        other_partial = boxes(box(0.6, 0.6))
        result = consensus("detection", {"a": partial, "b": other_partial, "c": careful})
        # careful agrees 2/3 with each partial; the partials agree 2/3 with careful, 0 with each other
        assert result == Consensus(careful, pytest.approx(2 / 3), 3)  # type: ignore[arg-type]

    def test_ties_go_to_the_first_annotator_by_name(self) -> None:
        left, right = boxes(box(0.1, 0.1)), boxes(box(0.6, 0.6))
        assert consensus("detection", {"zoe": left, "ada": right}).annotation == right
        assert consensus("detection", {"ada": left, "zoe": right}).annotation == left
        assert consensus("detection", {"zoe": left, "ada": right}).agreement == 0.0

    def test_agreeing_empty_annotations_are_a_consensus_of_nothing(self) -> None:
        assert consensus("detection", {"a": boxes(), "b": boxes()}) == Consensus(boxes(), 1.0, 2)


def test_task_none_has_no_consensus() -> None:
    assert consensus("none", {}) == Consensus(None, 0.0, 0)


class TestQualityScore:
    def test_rejected_samples_score_zero(self) -> None:
        assert quality_score(1.0, "rejected", 5) == 0.0

    def test_an_approved_unanimous_sample_of_three_annotators_scores_one(self) -> None:
        assert quality_score(1.0, "approved", 3) == 1.0

    def test_an_unreviewed_label_counts_half(self) -> None:
        assert quality_score(1.0, None, 3) == 0.5

    def test_fewer_annotators_lower_confidence(self) -> None:
        scores = [quality_score(1.0, "approved", n) for n in (1, 2, 3, 7)]
        assert scores == [0.8, 0.9, 1.0, 1.0]

    def test_agreement_outside_0_and_1_is_a_caller_error(self) -> None:
        with pytest.raises(ValueError, match="agreement"):
            quality_score(1.5, "approved", 1)

    @given(
        st.floats(0, 1),
        st.floats(0, 1),
        st.sampled_from(["approved", None]),
        st.integers(0, 10),
    )
    def test_quality_is_monotone_in_agreement_and_within_0_and_1(
        self, low: float, high: float, review: str | None, annotators: int
    ) -> None:
        low, high = sorted((low, high))
        worse = quality_score(low, review, annotators)  # type: ignore[arg-type]
        better = quality_score(high, review, annotators)  # type: ignore[arg-type]
        assert 0.0 <= worse <= better <= 1.0

    @given(st.floats(0, 1), st.integers(0, 9))
    def test_approval_and_more_annotators_never_lower_quality(
        self, agreement: float, annotators: int
    ) -> None:
        assert quality_score(agreement, None, annotators) <= quality_score(agreement, "approved", annotators)
        assert quality_score(agreement, "approved", annotators) <= quality_score(
            agreement, "approved", annotators + 1
        )
