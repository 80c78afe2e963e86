"""Labels as people write them: a CSV sheet (`filename` or `sample_id`, and `class`) or boxes as JSON.

A sheet is checked whole before anything is sent: its header, an empty cell, a sample named twice.
Filenames are mapped to sample ids by `resolve`, which refuses names the dataset does not have and
names that match more than one sample (the same base name uploaded with different bytes).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modelyard.v1 import datasets_pb2

SHOWN_PROBLEMS = 5
BOX_FIELDS = ("class_name", "x", "y", "width", "height")
KeyColumn = Literal["sample_id", "filename"]


class LabelInputError(Exception):
    """Labels that cannot be sent as given: the message says where and what to do."""


@dataclass(frozen=True, slots=True)
class LabelRow:
    """One labeled sample of a sheet: its line, the filename or sample id, the class."""

    line: int
    key: str
    class_name: str


@dataclass(frozen=True, slots=True)
class LabelSheet:
    """A sheet's rows and which column names the samples (`sample_id` wins when both are there)."""

    key_column: KeyColumn
    rows: list[LabelRow]


def read_label_sheet(path: Path) -> LabelSheet:
    """The rows of the CSV at `path`; LabelInputError for a bad header, empty cells or repeated samples."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = {name.strip().lower(): name for name in reader.fieldnames or []}
            key_column = _key_column(columns, path)
            rows = [_row(reader.line_num, record, columns, key_column) for record in reader]
    except OSError as error:
        raise LabelInputError(f"cannot read {path}: {error.strerror or error}") from error
    if not rows:
        raise LabelInputError(f"{path} has a header but no rows")
    _check_repeats(rows, key_column)
    return LabelSheet(key_column, rows)


def _key_column(columns: Mapping[str, str], path: Path) -> KeyColumn:
    if "class" not in columns or not ({"sample_id", "filename"} & columns.keys()):
        found = ", ".join(columns.values()) or "none"
        raise LabelInputError(
            f"{path} needs a header with a `filename` (or `sample_id`) column and a `class` column; "
            f"found: {found}"
        )
    return "sample_id" if "sample_id" in columns else "filename"


def _row(
    line: int, record: dict[str, str | None], columns: Mapping[str, str], key_column: KeyColumn
) -> LabelRow:
    key = (record.get(columns[key_column]) or "").strip()
    class_name = (record.get(columns["class"]) or "").strip()
    if not key or not class_name:
        raise LabelInputError(f"line {line}: both `{key_column}` and `class` need a value")
    return LabelRow(line, key, class_name)


def _check_repeats(rows: list[LabelRow], key_column: KeyColumn) -> None:
    lines: dict[str, list[int]] = {}
    for row in rows:
        lines.setdefault(row.key, []).append(row.line)
    repeated = [f"{key} (lines {', '.join(map(str, at))})" for key, at in lines.items() if len(at) > 1]
    if repeated:
        raise LabelInputError(
            f"each sample takes one label, but {len(repeated)} {key_column}(s) occur more than once: "
            f"{_some(repeated)}"
        )


def resolve(sheet: LabelSheet, ids_by_filename: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(sample id, class) per row; a filename sheet is mapped through `ids_by_filename`."""
    if sheet.key_column == "sample_id":
        return [(row.key, row.class_name) for row in sheet.rows]
    unknown = [row.key for row in sheet.rows if row.key not in ids_by_filename]
    if unknown:
        raise LabelInputError(
            f"{len(unknown)} filename(s) are not samples of the dataset: {_some(unknown)}; "
            "check the names (`yard datasets show DATASET --samples unlabeled`) or upload the files first"
        )
    ambiguous = [f"{row.key} ({', '.join(ids_by_filename[row.key])})" for row in sheet.rows
                 if len(ids_by_filename[row.key]) > 1]  # fmt: skip
    if ambiguous:
        raise LabelInputError(
            f"{len(ambiguous)} filename(s) name several samples: {_some(ambiguous)}; "
            "use a `sample_id` column instead"
        )
    return [(ids_by_filename[row.key][0], row.class_name) for row in sheet.rows]


def parse_boxes(text: str) -> list[datasets_pb2.BoundingBox]:
    """Boxes from `[{"class_name": "cat", "x": 0.1, "y": 0.2, "width": 0.3, "height": 0.4}, …]`."""
    try:
        boxes = json.loads(text)
    except json.JSONDecodeError as error:
        raise LabelInputError(f"--boxes-json is not JSON: {error}") from error
    if not isinstance(boxes, list) or not boxes:
        raise LabelInputError("--boxes-json must be a non-empty JSON list of boxes")
    return [_box(number, box) for number, box in enumerate(boxes, start=1)]


def _box(number: int, box: Any) -> datasets_pb2.BoundingBox:
    if not isinstance(box, dict) or set(box) != set(BOX_FIELDS):
        raise LabelInputError(f"box {number} needs exactly the fields {', '.join(BOX_FIELDS)}")
    if not isinstance(box["class_name"], str) or not all(
        isinstance(box[name], int | float) and not isinstance(box[name], bool) for name in BOX_FIELDS[1:]
    ):
        raise LabelInputError(f"box {number}: class_name is a string and x, y, width, height are numbers")
    return datasets_pb2.BoundingBox(**box)


def _some(items: Sequence[str]) -> str:
    more = f" and {len(items) - SHOWN_PROBLEMS} more" if len(items) > SHOWN_PROBLEMS else ""
    return ", ".join(items[:SHOWN_PROBLEMS]) + more
