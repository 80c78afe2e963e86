"""Inspection of uploaded tables: CSV and JSON Lines, refused at their first bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelyard_dataset.inspection import inspect_file
from modelyard_dataset.inspection.tables import MAX_COLUMNS, MAX_JSON_DEPTH
from modelyard_events.domain_errors import InvalidArgument

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def refusal(tmp_path: Path, filename: str, content: bytes) -> InvalidArgument:
    path = tmp_path / "upload.part"
    path.write_bytes(content)
    with pytest.raises(InvalidArgument) as refused:
        inspect_file(filename, path)
    assert refused.value.field == f"files.{filename}"
    return refused.value


def inspected_detail(tmp_path: Path, filename: str, content: bytes) -> dict[str, int | str]:
    path = tmp_path / "upload.part"
    path.write_bytes(content)
    inspected = inspect_file(filename, path)
    assert inspected.kind == "table"
    return inspected.detail


def test_a_csv_is_accepted_with_its_rows_and_columns(tmp_path: Path) -> None:
    csv = b'x1,x2,label\n0.5,1,cat\n"2,5",3,"dog\nor wolf"\n\n'

    assert inspected_detail(tmp_path, "flowers.csv", csv) == {"rows": 2, "columns": 3}


def test_a_csv_from_a_spreadsheet_with_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    csv = "\ufeffgröße,label\r\n1,a\r\n".encode()

    assert inspected_detail(tmp_path, "sizes.CSV", csv) == {"rows": 1, "columns": 2}


def test_a_csv_with_ragged_rows_is_refused_at_the_first_bad_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, "flowers.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n").message

    assert "2 columns on line 3 but 3 in its header" in message


def test_a_csv_with_only_a_header_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "flowers.csv", b"a,b,c\n").message

    assert "no data rows" in message


def test_a_csv_with_an_unclosed_quote_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "flowers.csv", b'a,b\n1,"2\n').message

    assert "is not valid CSV" in message


def test_a_csv_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    latin1 = "name,label\nAnna,1\nJosé,2\n".encode("latin-1")

    message = refusal(tmp_path, "flowers.csv", latin1).message

    assert "is not UTF-8 text (line 3)" in message


def test_binary_bytes_named_csv_are_refused_as_a_type_mismatch(tmp_path: Path) -> None:
    message = refusal(tmp_path, "flowers.csv", PNG_SIGNATURE + b"\x00\x00\x00\rIHDR").message

    assert "claims to be CSV (by its extension) but its content is PNG" in message


def test_unknown_binary_bytes_named_csv_are_refused_as_a_type_mismatch(tmp_path: Path) -> None:
    message = refusal(tmp_path, "flowers.csv", bytes(range(256))).message

    assert "claims to be CSV (by its extension) but its content is binary data" in message


def test_a_nul_byte_after_the_first_lines_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "flowers.csv", b"a,b\n" + b"1,2\n" * 30 + b"3,\x00\n").message

    assert "NUL byte" in message
    assert "line 32" in message


@pytest.mark.parametrize("filename", ["rows.jsonl", "rows.ndjson"])
def test_json_lines_are_accepted_with_their_rows_and_keys(tmp_path: Path, filename: str) -> None:
    jsonl = b'{"x": 1, "label": "cat"}\n\n{"x": 2, "label": "dog", "weight": 0.5}\n'

    assert inspected_detail(tmp_path, filename, jsonl) == {"rows": 2, "columns": 3}


def test_json_lines_with_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    jsonl = '\ufeff{"x": 1}\n'.encode()

    assert inspected_detail(tmp_path, "rows.jsonl", jsonl) == {"rows": 1, "columns": 1}


def test_json_lines_with_a_non_object_line_are_refused_at_that_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, "rows.jsonl", b'{"x": 1}\n\n[1, 2]\n{"x": 3}\n').message

    assert "JSON list on line 3, not an object" in message


def test_json_lines_with_invalid_json_are_refused_at_that_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, "rows.jsonl", b'{"x": 1}\n{"x": \n').message

    assert "invalid JSON on line 2" in message


def test_json_lines_with_only_blank_lines_are_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "rows.ndjson", b"\n  \n\n").message

    assert "no JSON objects" in message


def test_a_table_without_newlines_is_refused_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard_dataset.inspection import tables

    monkeypatch.setattr(tables, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "rows.csv"
    path.write_text("a,b\n" + "1," * 5000 + "1\n")
    with pytest.raises(InvalidArgument, match="longer than"):
        inspect_file("rows.csv", path)


def test_a_table_of_120000_columns_is_refused_naming_the_file_and_the_cap(tmp_path: Path) -> None:
    # Issue 11: this 1.68 MB table passed inspection, and every message about it later named each column.
    header = ",".join(f"c{i:06d}" for i in range(120_000))
    row = ",".join("1" for _ in range(120_000))
    content = f"{header}\n{row}\n".encode()
    assert len(content) > 1_000_000

    refused = refusal(tmp_path, "wide.csv", content)
    assert refused.problems["files.wide.csv"] == (
        "wide.csv has 120,000 columns in its header (line 1), more than the 10,000 a table may have; "
        "split it into narrower tables or drop columns"
    )


def test_a_table_at_the_column_cap_is_accepted(tmp_path: Path) -> None:
    header = ",".join(f"c{i}" for i in range(MAX_COLUMNS))
    row = ",".join("1" for _ in range(MAX_COLUMNS))

    assert inspected_detail(tmp_path, "cap.csv", f"{header}\n{row}\n".encode())["columns"] == MAX_COLUMNS


def test_json_lines_whose_keys_together_pass_the_column_cap_are_refused_at_that_line(tmp_path: Path) -> None:
    half = MAX_COLUMNS // 2 + 1
    first = json.dumps({f"a{i}": 1 for i in range(half)})
    second = json.dumps({f"b{i}": 1 for i in range(half)})

    refused = refusal(tmp_path, "keys.jsonl", f"{first}\n{second}\n".encode())
    assert f"has {2 * half:,} columns (distinct keys) by line 2" in refused.message


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeply_nested_json_lines_are_refused_naming_the_file_and_line(tmp_path: Path, depth: int) -> None:
    # 100,000 levels made json.loads raise RecursionError, which became INTERNAL for the whole call.
    nested = "[" * (depth - 1) + "]" * (depth - 1)
    content = f'{{"x": 1}}\n{{"x": {nested}}}\n'.encode()

    refused = refusal(tmp_path, "deep.jsonl", content)
    assert refused.problems["files.deep.jsonl"].startswith(
        f"deep.jsonl has JSON nested more than {MAX_JSON_DEPTH} levels deep on line 2; write one flat"
    )


def test_json_lines_nested_up_to_the_cap_are_accepted(tmp_path: Path) -> None:
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)

    assert inspected_detail(tmp_path, "ok.jsonl", f'{{"x": {nested}}}\n'.encode()) == {
        "rows": 1,
        "columns": 1,
    }
