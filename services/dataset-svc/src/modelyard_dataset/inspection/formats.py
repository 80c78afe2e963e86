"""The accepted file formats: extension → kind, media type and the content signature it must carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["image", "table", "video"]


class UnreadableContent(Exception):
    """A file whose bytes are not what it must be; `problem` completes a sentence about the file."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class FileFormat:
    """One accepted format; `content` is the signature name `sniff_content` must find in the bytes."""

    label: str
    kind: Kind
    media_type: str
    content: str


PNG = FileFormat("PNG", "image", "image/png", "PNG")
JPEG = FileFormat("JPEG", "image", "image/jpeg", "JPEG")
GIF = FileFormat("GIF", "image", "image/gif", "GIF")
BMP = FileFormat("BMP", "image", "image/bmp", "BMP")
WEBP = FileFormat("WebP", "image", "image/webp", "WebP")
CSV = FileFormat("CSV", "table", "text/csv", "text")
JSON_LINES = FileFormat("JSON Lines", "table", "application/x-ndjson", "text")
MP4 = FileFormat("MP4", "video", "video/mp4", "MP4/QuickTime")
M4V = FileFormat("M4V", "video", "video/x-m4v", "MP4/QuickTime")
QUICKTIME = FileFormat("QuickTime", "video", "video/quicktime", "MP4/QuickTime")
WEBM = FileFormat("WebM", "video", "video/webm", "Matroska/WebM")
MATROSKA = FileFormat("Matroska", "video", "video/x-matroska", "Matroska/WebM")
AVI = FileFormat("AVI", "video", "video/x-msvideo", "AVI")

FORMATS_BY_EXTENSION: dict[str, FileFormat] = {
    ".png": PNG,
    ".jpg": JPEG,
    ".jpeg": JPEG,
    ".gif": GIF,
    ".bmp": BMP,
    ".webp": WEBP,
    ".csv": CSV,
    ".jsonl": JSON_LINES,
    ".ndjson": JSON_LINES,
    ".mp4": MP4,
    ".m4v": M4V,
    ".mov": QUICKTIME,
    ".webm": WEBM,
    ".mkv": MATROSKA,
    ".avi": AVI,
}

ACCEPTED_EXTENSIONS: tuple[str, ...] = tuple(FORMATS_BY_EXTENSION)


def extension_of(filename: str) -> str:
    """The lowercased extension with its dot ('' when the name has none)."""
    stem, dot, extension = filename.rpartition(".")
    return f".{extension.lower()}" if dot and stem else ""


def format_for(filename: str) -> FileFormat:
    """The accepted format that the name's extension (any case) claims; UnreadableContent otherwise."""
    extension = extension_of(filename)
    found = FORMATS_BY_EXTENSION.get(extension)
    if found is None:
        claimed = f"has the extension '{extension}'" if extension else "has no extension"
        raise UnreadableContent(f"{claimed}, which is not accepted; {accepted_extensions_sentence()}")
    return found


def accepted_extensions_sentence() -> str:
    """'send images (.png …), tables (…) or videos (…)'."""
    by_kind = {
        kind: ", ".join(ext for ext, fmt in FORMATS_BY_EXTENSION.items() if fmt.kind == kind)
        for kind in ("image", "table", "video")
    }
    return f"send images ({by_kind['image']}), tables ({by_kind['table']}) or videos ({by_kind['video']})"
