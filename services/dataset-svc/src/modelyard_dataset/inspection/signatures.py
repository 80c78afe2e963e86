"""What a file holds, by its first bytes (magic numbers), whatever its name says.

Only formats worth naming in an error are recognized; everything else is "text" (no NUL, DEL or
control bytes other than tab, CR, LF, FF; the encoding is the table reader's concern, so it can
name the line) or "binary data of an unknown type".
"""

from __future__ import annotations

HEADER_BYTES = 64

TEXT = "text"
UNKNOWN_BINARY = "binary data of an unknown type"

_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x7fELF", "an ELF executable"),
)
_TEXT_CONTROLS = frozenset(b"\t\n\r\f")


def sniff_content(header: bytes) -> str:
    """The name of what `header` (a file's first HEADER_BYTES bytes) holds, e.g. "PNG" or "text"."""
    for prefix, name in _PREFIXES:
        if header.startswith(prefix):
            return name
    if header[4:8] == b"ftyp":
        return "MP4/QuickTime"
    if header[:4] == b"RIFF" and header[8:12] in {b"WEBP", b"AVI "}:
        return "WebP" if header[8:12] == b"WEBP" else "AVI"
    # BMP has only two magic bytes; its reserved header fields (bytes 6-9) are zero, text's never are.
    if header[:2] == b"BM" and header[6:10] == b"\0\0\0\0" and len(header) >= 26:
        return "BMP"
    return TEXT if _looks_like_text(header) else UNKNOWN_BINARY


def ftyp_brand(header: bytes) -> str:
    """The major brand of an ISO media file's 'ftyp' box (e.g. "isom", "qt"), '' when unreadable."""
    return header[8:12].decode("ascii", errors="replace").strip()


def _looks_like_text(header: bytes) -> bool:
    return not any((byte < 0x20 and byte not in _TEXT_CONTROLS) or byte == 0x7F for byte in header)
