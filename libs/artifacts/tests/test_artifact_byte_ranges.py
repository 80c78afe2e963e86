"""Which bytes a Range header asks for, on a 1,000-byte blob and an empty one."""

from __future__ import annotations

import pytest

from modelyard_artifacts.byte_ranges import ByteSpan, RangeNotSatisfiable, requested_span


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-99", ByteSpan(0, 100, 1000, True)),
        ("bytes=900-", ByteSpan(900, 1000, 1000, True)),
        ("bytes=900-5000", ByteSpan(900, 1000, 1000, True)),
        ("bytes=-100", ByteSpan(900, 1000, 1000, True)),
        ("bytes=-5000", ByteSpan(0, 1000, 1000, True)),
        ("BYTES=0-0", ByteSpan(0, 1, 1000, True)),
        (None, ByteSpan(0, 1000, 1000, False)),
        ("bytes=0-1,5-6", ByteSpan(0, 1000, 1000, False)),
        ("bytes=9-3", ByteSpan(0, 1000, 1000, False)),
        ("bytes=-", ByteSpan(0, 1000, 1000, False)),
        ("items=0-1", ByteSpan(0, 1000, 1000, False)),
    ],
)
def test_a_single_range_is_honoured_and_anything_else_gets_the_whole_blob(
    header: str | None, span: ByteSpan
) -> None:
    assert requested_span(header, 1000) == span


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-1", 0)],
)
def test_a_range_past_the_end_is_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        requested_span(header, size)


def test_a_range_for_another_representation_gets_the_whole_blob() -> None:
    assert requested_span("bytes=0-1", 1000, if_range_matches=False) == ByteSpan(0, 1000, 1000, False)


def test_content_range_names_the_last_byte_inclusively() -> None:
    assert ByteSpan(900, 1000, 1000, True).content_range() == "bytes 900-999/1000"


def test_a_range_with_absurdly_long_numbers_is_ignored_not_a_server_error() -> None:
    span = requested_span("bytes=" + "9" * 5000 + "-", 100)
    assert (span.start, span.end, span.partial) == (0, 100, False)
