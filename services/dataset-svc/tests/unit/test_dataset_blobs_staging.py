"""Staging: files hashed while written; a discarded file or an ended upload area leaves nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelyard_dataset.storage import Staging


def test_a_staged_file_knows_its_hash_and_size(tmp_path: Path) -> None:
    writer = Staging(tmp_path / "staging").new_file()
    writer.write(b"cat-")
    writer.write(b"001")
    assert writer.size_bytes == 7

    staged = writer.finish()

    assert staged.sha256 == hashlib.sha256(b"cat-001").hexdigest()
    assert staged.size_bytes == 7
    assert staged.path.read_bytes() == b"cat-001"


def test_each_new_file_has_its_own_name(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging")

    paths = {staging.new_file().finish().path for _ in range(5)}

    assert len(paths) == 5


def test_a_discarded_file_leaves_nothing(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging")
    writer = staging.new_file()
    writer.write(b"refused")

    writer.discard()

    assert list(staging.root.iterdir()) == []


def test_an_ended_upload_area_leaves_nothing_even_after_an_error(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging")

    try:
        with staging.upload_area() as area:
            area.new_file().write(b"half")
            area.new_file().finish()
            raise ConnectionResetError("client went away")
    except ConnectionResetError:
        pass

    assert list(staging.root.iterdir()) == []


def test_a_writer_left_open_is_closed_when_its_upload_area_ends(tmp_path: Path) -> None:
    with Staging(tmp_path / "staging").upload_area() as area:
        writer = area.new_file()
        writer.write(b"interrupted")

    with pytest.raises(ValueError, match="closed file"):
        writer.write(b"more")


def test_discard_all_empties_the_root(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging")
    staging.new_file().finish()
    with staging.upload_area() as area:
        area.new_file().finish()
        staging.discard_all()

    assert list(staging.root.iterdir()) == []
