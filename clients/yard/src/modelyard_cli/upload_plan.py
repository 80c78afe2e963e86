"""Which files an upload sends and in which batches, decided before any byte is sent.

Folders are walked recursively in sorted order; hidden files and folders (a name starting with `.`)
are skipped, and so is a symlink whose target lies outside the folder being walked (and every
symlinked folder, so a walk never loops). A file named on the command line is taken as it is.
A sample is named by its file's base name, so two files of one upload with the same base name are
refused, as are empty files (a sample holds at least one byte).

A provenance sheet (`--provenance FILE.csv`) gives files their source camera, capture time and free
metadata. It is read and checked whole before anything is sent; every problem names its line.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

SHOWN_PROBLEMS = 5


class UploadPlanError(Exception):
    """The files cannot be uploaded as asked: the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class FileProvenance:
    """Where a file came from, as a provenance sheet's row gives it (each part optional)."""

    source_camera_id: str | None = None
    captured_at: datetime | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UploadFile:
    """One file to send: where it is, the sample name it travels under, its size and provenance."""

    path: Path
    filename: str
    size_bytes: int
    provenance: FileProvenance | None = None


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


def with_provenance(plan: UploadPlan, sheet: Path) -> UploadPlan:
    """The plan with each file's row of the provenance sheet; UploadPlanError naming the bad lines."""
    rows = read_provenance_sheet(sheet, {f.filename for f in plan.files})
    return replace(plan, files=[replace(f, provenance=rows.get(f.filename)) for f in plan.files])


SHEET_COLUMNS = ("filename", "source_camera_id", "captured_at", "metadata")


def read_provenance_sheet(path: Path, filenames: set[str]) -> dict[str, FileProvenance]:
    """Each named file's provenance from a CSV sheet with the columns SHEET_COLUMNS (a header row
    first; empty cells mean "not given"); UploadPlanError naming every bad line (the first few).

    `captured_at` is ISO 8601 with a time zone (2026-03-14T09:26:53Z); `metadata` a JSON object of
    strings. A row must name a file of this upload (a base name), at most once.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not part of the header
    except (OSError, UnicodeDecodeError) as error:
        raise UploadPlanError(f"cannot read the provenance sheet {path}: {error}") from error
    reader = csv.reader(io.StringIO(text, newline=""))  # a quoted cell may span lines
    header = [cell.strip() for cell in next(reader, [])]
    if header[: len(SHEET_COLUMNS)] != list(SHEET_COLUMNS) or len(header) != len(SHEET_COLUMNS):
        raise UploadPlanError(
            f"{path}, line 1: the header must be {','.join(SHEET_COLUMNS)}; "
            f"got {','.join(header) or 'nothing'}"
        )
    rows: dict[str, FileProvenance] = {}
    problems: list[str] = []
    for cells in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        try:
            name, provenance = _sheet_row(cells, filenames, rows)
        except ValueError as error:
            problems.append(f"line {line}: {error}")
            continue
        rows[name] = provenance
    if problems:
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        raise UploadPlanError(f"{path}: {shown}{_more(len(problems))}. Fix the sheet; nothing was sent.")
    return rows


def _sheet_row(
    cells: list[str], filenames: set[str], seen: dict[str, FileProvenance]
) -> tuple[str, FileProvenance]:
    if len(cells) != len(SHEET_COLUMNS):
        raise ValueError(
            f"has {len(cells)} cells; a row holds {len(SHEET_COLUMNS)} (quote a JSON object that has commas)"
        )
    name, camera, captured, metadata = (cell.strip() for cell in cells)
    if name not in filenames:
        raise ValueError(f"{name or '(no file name)'} is not a file of this upload (give its base name)")
    if name in seen:
        raise ValueError(f"{name} has a row already; give each file one row")
    return name, FileProvenance(camera or None, _captured_at(captured), _metadata(metadata))


def _captured_at(cell: str) -> datetime | None:
    if not cell:
        return None
    try:
        moment = datetime.fromisoformat(cell)
    except ValueError:
        raise ValueError(f"captured_at {cell!r} is not an ISO 8601 time (2026-03-14T09:26:53Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"captured_at {cell!r} has no time zone; add Z or +hh:mm")
    return moment


def _metadata(cell: str) -> dict[str, str]:
    if not cell:
        return {}
    try:
        value = json.loads(cell)
    except json.JSONDecodeError as error:
        raise ValueError(f"metadata is not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError('metadata must be a JSON object of strings, e.g. {"site": "dock 3"}')
    return value


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
