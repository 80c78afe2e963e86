"""Inspection of an uploaded file before it becomes a sample: is it what its name says, and whole?

Rules, checked in this order (the first broken one is reported):
1. The name is a plain file name (see `filenames.check_filename`).
2. The extension (any case) is accepted: images .png .jpg .jpeg .gif .bmp .webp; tables .csv
   .jsonl .ndjson; videos .mp4 .m4v .mov .webm .mkv .avi.
3. The file is not empty.
4. The content matches the extension by its first bytes (magic numbers): a .png must start like a
   PNG, a table must be text, a video must carry its container's signature (MP4/MOV/M4V: an 'ftyp'
   box at offset 4; WebM/MKV: the EBML header 1A 45 DF A3; AVI: 'RIFF' … 'AVI ').
5. Images decode completely with Pillow and have at most `images.MAX_IMAGE_PIXELS` pixels.
   Tables parse: CSV has a header and at least one data row, every row with the header's number of
   columns; JSON Lines has at least one line and every non-blank line is a JSON object.
   Videos are stored as they are and never decoded: the signature is all that is checked.

Each refusal is InvalidArgument(field="files.<name>") whose message says what is wrong and what to do.
The only I/O is reading the staged file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelyard_dataset.inspection.filenames import check_filename
from modelyard_dataset.inspection.formats import JSON_LINES, FileFormat, Kind, UnreadableContent, format_for
from modelyard_dataset.inspection.images import read_image
from modelyard_dataset.inspection.signatures import HEADER_BYTES, ftyp_brand, sniff_content
from modelyard_dataset.inspection.tables import read_csv, read_json_lines
from modelyard_events.domain_errors import InvalidArgument

Detail = dict[str, int | str]


@dataclass(frozen=True)
class InspectedFile:
    """An accepted file: its media type, kind and what was learned reading it (size, rows …)."""

    media_type: str
    kind: Kind
    detail: Detail


def inspect_file(filename: str, path: Path) -> InspectedFile:
    """What the file at `path`, uploaded as `filename`, holds.

    Raises InvalidArgument(field="files.<filename>") naming the first rule the file breaks.
    """
    field = f"files.{filename}"
    name_problem = check_filename(filename)
    if name_problem is not None:
        raise InvalidArgument(field, name_problem)
    try:
        file_format = format_for(filename)
        detail = _read(path, file_format, _checked_header(path, file_format))
    except UnreadableContent as refused:
        raise InvalidArgument(field, f"{filename} {refused.problem}") from None
    return InspectedFile(media_type=file_format.media_type, kind=file_format.kind, detail=detail)


def _checked_header(path: Path, file_format: FileFormat) -> bytes:
    with path.open("rb") as file:
        header = file.read(HEADER_BYTES)
    if not header:
        raise UnreadableContent("is empty (0 bytes); send the file with its content")
    found = sniff_content(header)
    if found != file_format.content:
        raise UnreadableContent(
            f"claims to be {file_format.label} (by its extension) but its content is {found}; "
            f"send a real {file_format.label} file, or name the file after what it holds"
        )
    return header


def _read(path: Path, file_format: FileFormat, header: bytes) -> Detail:
    if file_format.kind == "image":
        return read_image(path, file_format)
    if file_format.kind == "table":
        table_reader: Callable[[Path], Detail] = read_json_lines if file_format == JSON_LINES else read_csv
        return table_reader(path)
    return _video_detail(file_format, header)


def _video_detail(file_format: FileFormat, header: bytes) -> Detail:
    if file_format.content == "MP4/QuickTime":
        return {"container": file_format.content, "brand": ftyp_brand(header)}
    return {"container": file_format.content}
