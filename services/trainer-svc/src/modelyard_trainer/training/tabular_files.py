"""Reading tabular datasets: CSV with a header row, or JSONL with one object per line.

Every refusal is a `TrainingDataError` that names the file, the line and the
column, so whoever published the dataset can fix it without reading our code.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelyard_inference.labels import ClassLabel as ClassLabel
from modelyard_trainer.training.errors import TrainingDataError

TABULAR_SUFFIXES = (".csv", ".jsonl", ".ndjson")
COLUMNS_LISTED = 20  # a message names this many columns of a wide table, then says how many more
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Table:
    """Feature values (N × F, float64, in `feature_names` order) and the raw target cell of each row."""

    columns: list[str]  # every column of the file, in file order
    feature_names: list[str]
    features: npt.NDArray[np.float64]
    targets: list[object]
    origins: list[tuple[str, int]]  # (file, line) each row came from, for messages
    target_column: str

    @property
    def source(self) -> str:
        """The file(s) the rows came from, for messages."""
        return _listed(list(dict.fromkeys(name for name, _ in self.origins)))


def read_table(path: Path, target_column: str, feature_columns: list[str] | None) -> Table:
    """The rows of a .csv or .jsonl file with numeric features; refuses empty files and bad cells."""
    _check_suffix(path.name)
    if path.stat().st_size == 0:
        raise TrainingDataError(f"{path.name} is empty")
    return parse_table(path.name, path.read_bytes(), target_column, feature_columns)


def parse_table(name: str, data: bytes, target_column: str, feature_columns: list[str] | None) -> Table:
    """The rows of the bytes of file `name` (.csv or .jsonl, told by its suffix), as `read_table` reads."""
    suffix = _check_suffix(name)
    if not data:
        raise TrainingDataError(f"{name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TrainingDataError(f"{name} is not UTF-8 text (byte {error.start})") from None
    try:
        columns, records = _csv_records(name, text) if suffix == ".csv" else _jsonl_records(name, text)
    except csv.Error as error:
        raise TrainingDataError(f"{name} is not readable CSV: {error}") from None
    names = _feature_names(name, columns, target_column, feature_columns)
    features: list[list[float]] = []
    targets: list[object] = []
    origins: list[tuple[str, int]] = []
    for line, record in records:
        features.append([_number(record, column, line, name) for column in names])
        targets.append(_cell(record, target_column, line, name))
        origins.append((name, line))
    if not features:
        raise TrainingDataError(f"{name} has no data rows")
    matrix = np.asarray(features, dtype=np.float64).reshape(len(features), len(names))
    return Table(columns, names, matrix, targets, origins, target_column)


def concat_tables(tables: Sequence[Table]) -> Table:
    """The rows of several tables in order; every table must have the same columns in the same order."""
    first = tables[0]
    for table in tables[1:]:
        if table.columns != first.columns:
            raise TrainingDataError(
                f"{table.source} has columns {_listed(table.columns)}, but {first.source} has "
                f"{_listed(first.columns)}; every file of a dataset must have the same columns "
                "in the same order"
            )
    return Table(
        first.columns,
        first.feature_names,
        np.concatenate([table.features for table in tables]),
        [target for table in tables for target in table.targets],
        [origin for table in tables for origin in table.origins],
        first.target_column,
    )


def _check_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in TABULAR_SUFFIXES:
        raise TrainingDataError(
            f"{name}: tabular datasets must be {', '.join(TABULAR_SUFFIXES)} files, "
            f"not {suffix or 'no suffix'}"
        )
    return suffix


def regression_targets(table: Table) -> npt.NDArray[np.float64]:
    """The target column as floats; every cell must be a finite number."""
    values = [
        _as_number(v, table.target_column, line, source)
        for v, (source, line) in zip(table.targets, table.origins, strict=True)
    ]
    return np.asarray(values, dtype=np.float64)


def row_class_labels(table: Table) -> list[ClassLabel]:
    """The class label of each row: all ints, or all strings when any label is not an integer."""
    labels = [
        _class_label(v, table.target_column, line, source)
        for v, (source, line) in zip(table.targets, table.origins, strict=True)
    ]
    if not all(isinstance(label, int) for label in labels):
        labels = [str(label) for label in labels]
    return labels


def class_targets(table: Table) -> tuple[npt.NDArray[np.int64], list[ClassLabel]]:
    """Class index per row and the sorted class labels (ints, or strings when any label is not an integer)."""
    labels = row_class_labels(table)
    classes: list[ClassLabel] = sorted(set(labels))  # all int or (now) all str, so they compare
    if len(classes) < 2:
        raise TrainingDataError(
            f"{table.source}: target column {table.target_column!r} has only one class ({classes[0]!r}); "
            "a classifier needs at least two"
        )
    index = {label: i for i, label in enumerate(classes)}
    return np.asarray([index[label] for label in labels], dtype=np.int64), classes


Record = dict[str, Any]


def _csv_records(name: str, text: str) -> tuple[list[str], list[tuple[int, Record]]]:
    records: list[tuple[int, Record]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or all(not column.strip() for column in header):
        raise TrainingDataError(f"{name} has no header row")
    columns = [column.strip() for column in header]
    for row in reader:
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise TrainingDataError(
                f"{name} line {reader.line_num}: {len(row)} fields, but the header has {len(columns)}"
            )
        records.append((reader.line_num, dict(zip(columns, row, strict=True))))
    return columns, records


def _jsonl_records(name: str, text: str) -> tuple[list[str], list[tuple[int, Record]]]:
    parsed: list[tuple[int, Record]] = []
    # newline=None: universal newlines, as when the file is opened in text mode.
    for line, content in enumerate(io.StringIO(text, newline=None), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            raise TrainingDataError(f"{name} line {line} is not valid JSON: {error.msg}") from None
        if not isinstance(record, dict):
            raise TrainingDataError(f"{name} line {line} is not a JSON object")
        parsed.append((line, record))
    if not parsed:
        raise TrainingDataError(f"{name} has no data rows")
    return list(parsed[0][1]), parsed


def _feature_names(source: str, columns: list[str], target: str, wanted: list[str] | None) -> list[str]:
    if target not in columns:
        raise TrainingDataError(f"{source}: no target column {target!r}; columns are {_listed(columns)}")
    if wanted is None:
        names = [name for name in columns if name != target]
        if not names:
            raise TrainingDataError(f"{source}: no feature columns besides the target {target!r}")
        return names
    missing = [name for name in wanted if name not in columns]
    if missing:
        raise TrainingDataError(
            f"{source}: no feature column {_listed([repr(name) for name in missing])}; "
            f"columns are {_listed(columns)}"
        )
    if target in wanted:
        raise TrainingDataError(f"{source}: the target column {target!r} cannot also be a feature")
    return list(wanted)


def _listed(names: Sequence[str]) -> str:
    """The first COLUMNS_LISTED names (each cut at 64 characters), then how many more: a message about
    a wide table, or about many files, stays short."""
    shown = ", ".join(name if len(name) <= 64 else f"{name[:63]}…" for name in names[:COLUMNS_LISTED])
    hidden = len(names) - COLUMNS_LISTED
    return f"{shown} and {hidden:,} more" if hidden > 0 else shown


def _cell(record: Record, column: str, line: int, source: str) -> object:
    if column not in record:
        raise TrainingDataError(f"{source} line {line}: no value for column {column!r}")
    return record[column]


def _number(record: Record, column: str, line: int, source: str) -> float:
    return _as_number(_cell(record, column, line, source), column, line, source)


def _as_number(value: object, column: str, line: int, source: str) -> float:
    where = f"{source} line {line}: column {column!r}"
    if isinstance(value, bool) or value is None or not isinstance(value, int | float | str):
        raise TrainingDataError(f"{where} is {json.dumps(value)}, not a number")
    if isinstance(value, str):
        if not value.strip():
            raise TrainingDataError(f"{where} is empty")
        try:
            number = float(value)
        except ValueError:
            raise TrainingDataError(f"{where} is {value!r}, not a number") from None
    else:
        number = float(value)
    if not math.isfinite(number):
        raise TrainingDataError(f"{where} is {value!r}, not a finite number")
    return number


def _class_label(value: object, column: str, line: int, source: str) -> ClassLabel:
    where = f"{source} line {line}: column {column!r}"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise TrainingDataError(f"{where} is empty")
        return int(text) if _INTEGER.fullmatch(text) else text
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TrainingDataError(f"{where} is {json.dumps(value)}; class labels must be integers or strings")
