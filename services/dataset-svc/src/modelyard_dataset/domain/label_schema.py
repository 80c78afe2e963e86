"""Label schemas and the annotations they accept.

A schema is fixed when a dataset is created: its task and its class names, in the order of the
model's outputs. `classification` labels a sample with one class; `detection` with boxes, each of a
class; `none` (tabular data whose target is a column of the file) takes no labels at all: samples are
only reviewed.

A detection annotation may hold an empty list of boxes: like CVAT and Label Studio, which keep an
annotated image with no objects as a negative ("nothing to detect") example and export it as such
(COCO: an image without annotations; YOLO: an empty label file), an explicit empty label is a
statement, not a missing one.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import get_args

from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.datasets import (
    MAX_CLASS_NAME_CHARS,
    MAX_CLASSES,
    AnnotationData,
    BoxData,
    LabelSchemaData,
    LabelTask,
)

TASKS: tuple[str, ...] = get_args(LabelTask)
_MIN_CLASSES = {"classification": 2, "detection": 1, "none": 0}
_EDGE_TOLERANCE = 1e-9  # x + width may round to 1.0000000000000002 for a box that touches the edge
NO_LABELS_MESSAGE = "this dataset's schema has no labels (task none); samples are only reviewed"


def listing(names: Sequence[str], limit: int = 10, separator: str = ", ") -> str:
    """The names joined by `separator`, cut after `limit` with "and N more" so messages stay short."""
    shown = separator.join(names[:limit])
    hidden = len(names) - limit
    return f"{shown}{separator}and {hidden} more" if hidden > 0 else shown


def checked_label_schema(task: str, classes: Sequence[str]) -> LabelSchemaData:
    """The schema, or InvalidArgument naming what is wrong with the task or which class names.

    Guarantees: the task is known; classification has ≥ 2 classes, detection ≥ 1, none 0; at most
    MAX_CLASSES; every name is 1..64 characters without surrounding spaces or control characters;
    no name repeats. Class order is kept (it is the model's output order).
    """
    if task not in TASKS:
        raise InvalidArgument("label_schema.task", f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    _check_class_count(task, classes)
    for name in classes:
        _check_class_name(name)
    repeated = [name for name, count in Counter(classes).items() if count > 1]
    if repeated:
        quoted = [repr(name) for name in repeated]
        raise InvalidArgument(
            "label_schema.classes", f"class names must be distinct; repeated: {listing(quoted)}"
        )
    return LabelSchemaData(task=task, classes=list(classes))


def _check_class_count(task: str, classes: Sequence[str]) -> None:
    needed = _MIN_CLASSES[task]
    if task == "none" and classes:
        raise InvalidArgument(
            "label_schema.classes", "task none takes no classes; leave classes empty or choose a labeled task"
        )
    if len(classes) < needed:
        raise InvalidArgument(
            "label_schema.classes",
            f"task {task} needs at least {needed} class{'es' if needed > 1 else ''}; got {len(classes)}",
        )
    if len(classes) > MAX_CLASSES:
        raise InvalidArgument(
            "label_schema.classes", f"at most {MAX_CLASSES} classes are allowed; got {len(classes)}"
        )


def _check_class_name(name: str) -> None:
    field = "label_schema.classes"
    if not 1 <= len(name) <= MAX_CLASS_NAME_CHARS:
        raise InvalidArgument(field, f"class name {name!r} must be 1 to {MAX_CLASS_NAME_CHARS} characters")
    if name != name.strip():
        raise InvalidArgument(field, f"class name {name!r} has leading or trailing whitespace; remove it")
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in name):
        raise InvalidArgument(field, f"class name {name!r} contains control or invisible characters")


def checked_annotation(schema: LabelSchemaData, annotation: AnnotationData, field: str) -> AnnotationData:
    """The annotation unchanged when the schema accepts it, else InvalidArgument under `field`.

    classification: `class_name` is one of the schema's classes and there are no boxes. detection:
    no `class_name`; boxes (empty = "nothing to detect"; at most MAX_BOXES, which the event schema
    holds to), each of a schema class, with
    finite coordinates, 0 ≤ x, y, width and height > 0, and inside the image (x + width ≤ 1,
    y + height ≤ 1). none: every label is refused.
    """
    if schema.task == "none":
        raise InvalidArgument(field, NO_LABELS_MESSAGE)
    if schema.task == "classification":
        _check_classification(schema, annotation, field)
    else:
        _check_detection(schema, annotation, field)
    return annotation


def _check_classification(schema: LabelSchemaData, annotation: AnnotationData, field: str) -> None:
    if annotation.boxes:
        raise InvalidArgument(
            f"{field}.boxes", "boxes are for detection datasets; this one is classification: give class_name"
        )
    if annotation.class_name is None:
        raise InvalidArgument(
            f"{field}.class_name", f"a classification label needs a class; allowed: {listing(schema.classes)}"
        )
    _check_known_class(schema, annotation.class_name, f"{field}.class_name")


def _check_detection(schema: LabelSchemaData, annotation: AnnotationData, field: str) -> None:
    if annotation.class_name is not None:
        raise InvalidArgument(
            f"{field}.class_name",
            "a detection label has no class of its own; give boxes, each with its class "
            "(an empty list means nothing to detect)",
        )
    for index, box in enumerate(annotation.boxes):
        _check_box(schema, box, f"{field}.boxes[{index}]")


def _check_box(schema: LabelSchemaData, box: BoxData, field: str) -> None:
    _check_known_class(schema, box.class_name, f"{field}.class_name")
    for name, value in (("x", box.x), ("y", box.y), ("width", box.width), ("height", box.height)):
        if not math.isfinite(value):
            raise InvalidArgument(f"{field}.{name}", f"must be a finite number; got {value}")
        if name in ("x", "y") and value < 0:
            raise InvalidArgument(f"{field}.{name}", f"must be ≥ 0 (a fraction of the image); got {value:g}")
        if name in ("width", "height") and value <= 0:
            raise InvalidArgument(f"{field}.{name}", f"must be > 0 (a fraction of the image); got {value:g}")
    if box.x + box.width > 1 + _EDGE_TOLERANCE:
        raise InvalidArgument(
            f"{field}.width", f"the box leaves the image: x + width = {box.x + box.width:g} > 1"
        )
    if box.y + box.height > 1 + _EDGE_TOLERANCE:
        raise InvalidArgument(
            f"{field}.height", f"the box leaves the image: y + height = {box.y + box.height:g} > 1"
        )


def _check_known_class(schema: LabelSchemaData, class_name: str, field: str) -> None:
    if class_name not in schema.classes:
        raise InvalidArgument(
            field, f"class {class_name!r} is not in the label schema; allowed: {listing(schema.classes)}"
        )
