"""Tables are read line by line (never whole into memory) and refused at the first bad line.

Both formats are UTF-8 text (a leading byte-order mark, as spreadsheets write it, is allowed).
CSV needs a header row and at least one data row, every row with the header's number of columns;
blank lines are skipped. JSON Lines needs at least one line, and every non-blank line is one JSON
object, nested at most MAX_JSON_DEPTH levels. A table has at most MAX_COLUMNS columns (distinct
keys over all its JSON lines): wider ones are refused before they can reach a trainer, whose
messages, models and memory all grow with the columns. Line numbers count from 1.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from modelyard_dataset.inspection.formats import UnreadableContent

if TYPE_CHECKING:
    from _csv import Reader as CsvReader  # the type csv.reader() returns

_BYTE_ORDER_MARK = "\ufeff"
MAX_COLUMNS = 10_000
MAX_JSON_DEPTH = 32  # a table row is a flat object; depth 1 is the row itself


def read_csv(path: Path) -> dict[str, int | str]:
    """Data rows and columns of a well-formed CSV file; UnreadableContent names the first bad line."""
    with path.open("rb") as file:
        reader = csv.reader(_text_lines(file), strict=True)
        try:
            header = next((row for row in reader if row), None)
            if header is None:
                raise UnreadableContent("has no header row; put the column names on the first line")
            _check_column_count(len(header), f"in its header (line {reader.line_num})")
            rows = _count_rows(reader, len(header))
        except csv.Error as error:
            raise UnreadableContent(f"is not valid CSV at line {reader.line_num}: {error}") from None
    if rows == 0:
        raise UnreadableContent("has a header row but no data rows; add at least one row of values")
    return {"rows": rows, "columns": len(header)}


def read_json_lines(path: Path) -> dict[str, int | str]:
    """Objects and distinct keys of a JSON Lines file; UnreadableContent names the first bad line."""
    rows, keys = 0, set[str]()
    with path.open("rb") as file:
        for number, line in enumerate(_text_lines(file), start=1):
            if line.strip():
                keys.update(_json_object(line, number))
                _check_column_count(len(keys), f"(distinct keys) by line {number}")
                rows += 1
    if rows == 0:
        raise UnreadableContent(
            'has no JSON objects; write one object per line, e.g. {"x": 1, "label": "cat"}'
        )
    return {"rows": rows, "columns": len(keys)}


def _count_rows(reader: CsvReader, columns: int) -> int:
    rows = 0
    for row in reader:
        if not row:
            continue
        if len(row) != columns:
            raise UnreadableContent(
                f"has {len(row)} columns on line {reader.line_num} but {columns} in its header; "
                f"give every row the header's {columns} columns"
            )
        rows += 1
    return rows


def _check_column_count(columns: int, where: str) -> None:
    if columns > MAX_COLUMNS:
        raise UnreadableContent(
            f"has {columns:,} columns {where}, more than the {MAX_COLUMNS:,} a table may have; "
            "split it into narrower tables or drop columns"
        )


def _json_object(line: str, number: int) -> dict[str, object]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as error:
        raise UnreadableContent(
            f"has invalid JSON on line {number} ({error.msg}); write one JSON object per line"
        ) from None
    except RecursionError:  # the decoder's own depth limit (about 1,000 levels)
        raise _nested_too_deep(number) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise _nested_too_deep(number)
    if not isinstance(value, dict):
        raise UnreadableContent(
            f"has a JSON {type(value).__name__} on line {number}, not an object; "
            'write one JSON object per line, e.g. {"x": 1, "label": "cat"}'
        )
    return value


def _nested_too_deep(number: int) -> UnreadableContent:
    return UnreadableContent(
        f"has JSON nested more than {MAX_JSON_DEPTH} levels deep on line {number}; "
        'write one flat JSON object per line, e.g. {"x": 1, "label": "cat"}'
    )


def _depth(value: object) -> int:
    # Iterative: a recursive walk would hit the recursion limit that json.loads itself stayed under.
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


MAX_LINE_BYTES = 16 * 2**20  # one row; longer means no newlines, not a table (and memory stays bounded)


def _text_lines(file: BinaryIO) -> Iterator[str]:
    # Decoded line by line (not by a buffered text reader) so an error names its own line.
    for number, raw in enumerate(iter(lambda: file.readline(MAX_LINE_BYTES + 1), b""), start=1):
        if len(raw) > MAX_LINE_BYTES:
            raise UnreadableContent(
                f"has a line {number} longer than {MAX_LINE_BYTES // 2**20} MiB; a table has one row per line"
            )
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableContent(f"is not UTF-8 text (line {number}); save it as UTF-8") from None
        # A NUL byte means binary data past the sniffed header; csv and json would accept some of it.
        if "\0" in line:
            raise UnreadableContent(f"holds binary data (a NUL byte) on line {number}; send a text file")
        yield line.removeprefix(_BYTE_ORDER_MARK) if number == 1 else line
