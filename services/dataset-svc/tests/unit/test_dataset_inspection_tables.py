"""Inspection of uploaded tables: CSV and JSON Lines, refused at their first bad line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard_dataset.inspection import inspect_file
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
