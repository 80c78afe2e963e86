"""Label schemas refuse what a model could not train on; annotations must fit their dataset's schema."""

from __future__ import annotations

import pytest

from modelyard.v1 import datasets_pb2
from modelyard_dataset.convert import annotation_from_proto
from modelyard_dataset.domain.label_schema import (
    MAX_CLASSES,
    checked_annotation,
    checked_label_schema,
    listing,
)
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.datasets import (
    MAX_BOXES,
    MAX_CLASS_NAME_CHARS,
    AnnotationData,
    BoxData,
    LabelSchemaData,
)

PETS = LabelSchemaData(task="classification", classes=["cat", "dog"])
VEHICLES = LabelSchemaData(task="detection", classes=["car", "bus"])
TABLE = LabelSchemaData(task="none", classes=[])


def box(x: float = 0.1, y: float = 0.1, width: float = 0.2, height: float = 0.2, cls: str = "car") -> BoxData:
    return BoxData(class_name=cls, x=x, y=y, width=width, height=height)


def refusal(task: str, classes: list[str]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        checked_label_schema(task, classes)
    return caught.value


def annotation_refusal(schema: LabelSchemaData, annotation: AnnotationData) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        checked_annotation(schema, annotation, "labels[0].annotation")
    return caught.value


class TestLabelSchema:
    def test_valid_schemas_keep_their_class_order(self) -> None:
        assert checked_label_schema("classification", ["dog", "cat"]).classes == ["dog", "cat"]
        assert checked_label_schema("detection", ["car"]).classes == ["car"]
        assert checked_label_schema("none", []) == TABLE

    def test_unknown_task_lists_the_valid_ones(self) -> None:
        error = refusal("segmentation", ["a", "b"])
        assert error.field == "label_schema.task"
        assert "classification, detection, none" in error.message

    def test_classification_needs_two_classes(self) -> None:
        error = refusal("classification", ["cat"])
        assert error.field == "label_schema.classes"
        assert "at least 2 classes" in error.message

    def test_detection_needs_one_class(self) -> None:
        assert "at least 1 class;" in refusal("detection", []).message

    def test_task_none_takes_no_classes(self) -> None:
        assert "task none takes no classes" in refusal("none", ["x"]).message

    def test_duplicate_class_names_are_named(self) -> None:
        error = refusal("classification", ["cat", "dog", "cat", "emu", "dog"])
        assert error.problems[error.field] == "class names must be distinct; repeated: 'cat', 'dog'"

    def test_too_many_classes(self) -> None:
        assert (
            f"at most {MAX_CLASSES}"
            in refusal("classification", [str(i) for i in range(MAX_CLASSES + 1)]).message
        )

    @pytest.mark.parametrize(
        ("name", "words"),
        [
            ("", "1 to 64 characters"),
            ("x" * 65, "1 to 64 characters"),
            (" cat", "leading or trailing whitespace"),
            ("cat\n", "leading or trailing whitespace"),
            ("c\x00at", "control or invisible"),
            ("c\u200bat", "control or invisible"),
        ],
    )
    def test_bad_class_names(self, name: str, words: str) -> None:
        assert words in refusal("classification", ["ok", name]).message

    def test_a_64_character_name_is_fine(self) -> None:
        assert checked_label_schema("detection", ["x" * 64]).classes == ["x" * 64]


class TestClassificationAnnotation:
    def test_a_schema_class_is_accepted_unchanged(self) -> None:
        label = AnnotationData(class_name="dog")
        assert checked_annotation(PETS, label, "annotation") is label

    def test_unknown_class_is_named_with_the_allowed_ones(self) -> None:
        error = annotation_refusal(PETS, AnnotationData(class_name="dgo"))
        assert error.field == "labels[0].annotation.class_name"
        assert error.problems[error.field] == "class 'dgo' is not in the label schema; allowed: cat, dog"

    def test_long_allowed_lists_are_cut(self) -> None:
        digits = LabelSchemaData(task="classification", classes=[f"c{i}" for i in range(30)])
        error = annotation_refusal(digits, AnnotationData(class_name="x"))
        assert error.problems[error.field].endswith(
            "allowed: c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, and 20 more"
        )

    def test_missing_class_is_refused(self) -> None:
        assert "needs a class" in annotation_refusal(PETS, AnnotationData()).message

    def test_boxes_on_a_classification_dataset_are_refused(self) -> None:
        error = annotation_refusal(PETS, AnnotationData(class_name="cat", boxes=[box(cls="cat")]))
        assert error.field == "labels[0].annotation.boxes"
        assert "boxes are for detection datasets" in error.message


class TestDetectionAnnotation:
    def test_boxes_of_schema_classes_are_accepted(self) -> None:
        label = AnnotationData(boxes=[box(), box(0.5, 0.5, 0.5, 0.5, cls="bus")])
        assert checked_annotation(VEHICLES, label, "annotation") is label

    def test_an_empty_box_list_means_nothing_to_detect(self) -> None:
        assert checked_annotation(VEHICLES, AnnotationData(boxes=[]), "annotation").boxes == []

    def test_a_box_touching_the_edge_is_inside(self) -> None:
        # 0.33 + 0.56 is 0.8900000000000001 in floating point, so x + width = 1.0000000000000002
        checked_annotation(VEHICLES, AnnotationData(boxes=[box(0.33 + 0.56, 0.0, 0.11, 1.0)]), "annotation")

    def test_a_class_name_of_its_own_is_refused(self) -> None:
        error = annotation_refusal(VEHICLES, AnnotationData(class_name="car"))
        assert "no class of its own" in error.message

    def test_unknown_box_class_is_named(self) -> None:
        error = annotation_refusal(VEHICLES, AnnotationData(boxes=[box(), box(cls="tram")]))
        assert error.field == "labels[0].annotation.boxes[1].class_name"
        assert error.problems[error.field] == "class 'tram' is not in the label schema; allowed: car, bus"

    @pytest.mark.parametrize(
        ("bad_box", "field", "words"),
        [
            (box(x=-0.1), "x", "must be ≥ 0"),
            (box(y=-0.01), "y", "must be ≥ 0"),
            (box(width=0.0), "width", "must be > 0"),
            (box(height=-0.2), "height", "must be > 0"),
            (box(x=0.9, width=0.2), "width", "leaves the image: x + width = 1.1 > 1"),
            (box(y=0.5, height=0.6), "height", "leaves the image: y + height = 1.1 > 1"),
            (box(x=float("nan")), "x", "finite"),
            (box(width=float("inf")), "width", "finite"),
        ],
    )
    def test_boxes_outside_the_image_or_degenerate_are_refused(
        self, bad_box: BoxData, field: str, words: str
    ) -> None:
        error = annotation_refusal(VEHICLES, AnnotationData(boxes=[bad_box]))
        assert error.field == f"labels[0].annotation.boxes[0].{field}"
        assert words in error.message

    def test_too_many_boxes_are_refused_before_they_reach_an_event(self) -> None:
        boxes = [datasets_pb2.BoundingBox(class_name="car", x=0.1, y=0.1, width=0.2, height=0.2)]
        with pytest.raises(InvalidArgument) as caught:
            annotation_from_proto(
                datasets_pb2.Annotation(boxes=boxes * (MAX_BOXES + 1)), "labels[3].annotation"
            )
        assert caught.value.field == "labels[3].annotation.boxes"
        assert f"at most {MAX_BOXES} boxes" in caught.value.message

    def test_an_overlong_class_name_is_refused_as_an_argument(self) -> None:
        with pytest.raises(InvalidArgument) as caught:
            annotation_from_proto(datasets_pb2.Annotation(class_name="c" * 10_000), "labels[0].annotation")
        assert caught.value.field == "labels[0].annotation.class_name"
        assert f"at most {MAX_CLASS_NAME_CHARS} characters" in caught.value.message


def test_labels_on_task_none_are_refused() -> None:
    error = annotation_refusal(TABLE, AnnotationData(class_name="x"))
    assert error.field == "labels[0].annotation"
    assert (
        error.problems[error.field]
        == "this dataset's schema has no labels (task none); samples are only reviewed"
    )


def test_listing_cuts_after_the_limit() -> None:
    assert listing(["a", "b", "c"], limit=2) == "a, b, and 1 more"
    assert listing(["a", "b"], limit=2) == "a, b"
