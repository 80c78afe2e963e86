"""Sample file names: plain names pass, anything that could be a path or hide a file is refused."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelyard_dataset.inspection import ACCEPTED_EXTENSIONS, check_filename


@pytest.mark.parametrize("name", ["cat-001.png", "Digits 7.JPEG", "table_v2.csv", "über.mp4", "a.b.c.webm"])
def test_a_plain_file_name_passes(name: str) -> None:
    assert check_filename(name) is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        ("images/cat.png", "path separator"),
        ("/etc/passwd", "path separator"),
        ("..\\..\\boot.ini", "path separator"),
        ("C:\\photos\\cat.png", "path separator"),
        (".", "names a folder"),
        ("..", "names a folder"),
        (".env", "starts with '.'"),
        ("cat..png", "contains '..'"),
        ("cat\0.png", "U+0000"),
        ("cat\n.png", "U+000A"),
        ("cat\x1b[31m.png", "U+001B"),
        ("cat\u2028.png", "U+2028"),
        ("a" * 252 + ".png", "256 bytes"),
        ("é" * 126 + ".png", "256 bytes"),
        ("cat\udcff.png", "not valid Unicode"),
    ],
)
def test_a_name_that_is_not_a_plain_file_name_is_refused(name: str, words: str) -> None:
    problem = check_filename(name)

    assert problem is not None
    assert words in problem
    assert "send the file's own name, e.g. cat-001.png, not a path" in problem


def test_a_name_of_exactly_255_bytes_passes() -> None:
    assert check_filename("a" * 251 + ".png") is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_name_with_a_slash_is_refused(before: str, after: str) -> None:
    assert check_filename(f"{before}/{after}") is not None


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_name_with_a_backslash_is_refused(before: str, after: str) -> None:
    assert check_filename(f"{before}\\{after}") is not None


@given(
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=200),
    st.sampled_from(ACCEPTED_EXTENSIONS),
)
def test_alphanumeric_names_with_an_accepted_extension_pass(stem: str, extension: str) -> None:
    assert check_filename(stem + extension) is None


@given(st.text(max_size=300))
def test_an_accepted_name_cannot_leave_its_folder(name: str) -> None:
    if check_filename(name) is None:
        assert not {"/", "\\", "\0"} & set(name)
        assert not name.startswith(".")
        assert ".." not in name
        assert len(name.encode()) <= 255
