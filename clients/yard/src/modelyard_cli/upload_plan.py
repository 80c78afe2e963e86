"""Which files an upload sends and in which batches, decided before any byte is sent.

Folders are walked recursively in sorted order; hidden files and folders (a name starting with `.`)
are skipped, and so is a symlink whose target lies outside the folder being walked (and every
symlinked folder, so a walk never loops). A file named on the command line is taken as it is.
A sample is named by its file's base name, so two files of one upload with the same base name are
refused, as are empty files (a sample holds at least one byte).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SHOWN_PROBLEMS = 5


class UploadPlanError(Exception):
    """The files cannot be uploaded as asked: the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class UploadFile:
    """One file to send: where it is, the sample name it travels under, and its size."""

    path: Path
    filename: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """The files of an upload in sending order, and the symlinks left out for pointing outside."""

    files: list[UploadFile]
    skipped_links: list[Path] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """The bytes the upload sends."""
        return sum(f.size_bytes for f in self.files)

    def batches(self, batch_files: int) -> list[list[UploadFile]]:
        """The files in consecutive batches of at most `batch_files`, one UploadSamples call each."""
        return [self.files[i : i + batch_files] for i in range(0, len(self.files), batch_files)]


def plan_upload(paths: Sequence[Path]) -> UploadPlan:
    """The files under `paths` (files or folders), checked; UploadPlanError when they cannot go."""
    found: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            walked, links = _walk(path)
            found += walked
            skipped += links
        elif path.is_file():
            found.append(path)
        else:
            raise UploadPlanError(f"{path} is neither a file nor a folder")
    files = [_upload_file(path) for path in _without_repeats(found)]
    if not files:
        raise UploadPlanError("no files to upload (hidden files and links out of the folders are skipped)")
    _check_names(files)
    _check_sizes(files)
    return UploadPlan(files, skipped)


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    real_root = root.resolve()
    files: list[Path] = []
    links: list[Path] = []
    for path in sorted(_visible_files(root)):
        if path.is_symlink() and not path.resolve().is_relative_to(real_root):
            links.append(path)
        elif path.is_file():
            files.append(path)
    return files, links


def _visible_files(root: Path) -> Iterator[Path]:
    for folder, subfolders, names in os.walk(root):  # followlinks=False: symlinked folders are not entered
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        yield from (Path(folder, name) for name in names if not name.startswith("."))


def _without_repeats(paths: list[Path]) -> list[Path]:
    """The paths without a second mention of the same file (a folder and a file inside it)."""
    seen: set[Path] = set()
    unique = []
    for path in paths:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            unique.append(path)
    return unique


def _upload_file(path: Path) -> UploadFile:
    try:
        size = path.stat().st_size
    except OSError as error:
        raise UploadPlanError(f"cannot read {path}: {error.strerror or error}") from error
    return UploadFile(path, path.name, size)


def _check_names(files: list[UploadFile]) -> None:
    by_name: dict[str, list[Path]] = defaultdict(list)
    for upload in files:
        by_name[upload.filename].append(upload.path)
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if clashes:
        shown = [
            f"{name}: {', '.join(map(str, paths))}" for name, paths in list(clashes.items())[:SHOWN_PROBLEMS]
        ]
        raise UploadPlanError(
            f"{len(clashes)} base name(s) occur more than once, and a sample is named by its file's base "
            f"name: {'; '.join(shown)}{_more(len(clashes))}. Rename the files or upload them separately."
        )


def _check_sizes(files: list[UploadFile]) -> None:
    empty = [str(f.path) for f in files if f.size_bytes == 0]
    if empty:
        raise UploadPlanError(
            f"{len(empty)} empty file(s), and a sample needs at least one byte: "
            f"{', '.join(empty[:SHOWN_PROBLEMS])}{_more(len(empty))}. Leave them out."
        )


def _more(count: int) -> str:
    return f" and {count - SHOWN_PROBLEMS} more" if count > SHOWN_PROBLEMS else ""
