"""Staging: files hashed while written; a discarded file or an ended upload area leaves nothing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from modelyard_blobs import Staging


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


def test_files_abandoned_by_a_crashed_process_are_removed_but_fresh_ones_kept(tmp_path: Path) -> None:
    staging = Staging(tmp_path / "staging")
    old, fresh = staging.new_file().finish(), staging.new_file()
    os.utime(old.path, (1_000_000, 1_000_000))

    assert staging.remove_abandoned(older_than_s=3600) == 1

    assert not old.path.exists()
    assert fresh.path.exists()
