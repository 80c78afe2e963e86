"""Which bytes of an artifact a GET asks for: one `Range: bytes=…` (RFC 9110 §14), read without I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

# At most 19 digits (any file size); a longer number is not a range we serve, and int() of it is slow.
_SINGLE_RANGE = re.compile(r"bytes=(\d{0,19})-(\d{0,19})", re.ASCII | re.IGNORECASE)


class RangeNotSatisfiable(ValueError):
    """The range asks only for bytes past the end (answered 416 with `Content-Range: bytes */size`)."""


@dataclass(frozen=True, slots=True)
class ByteSpan:
    """Bytes [start, end) of a blob of `size` bytes; `partial` when answered 206 (a Range was honoured)."""

    start: int
    end: int
    size: int
    partial: bool

    @property
    def length(self) -> int:
        """How many bytes the response body carries."""
        return self.end - self.start

    def content_range(self) -> str:
        """The Content-Range header of a 206 answer."""
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


def requested_span(range_header: str | None, size: int, *, if_range_matches: bool = True) -> ByteSpan:
    """The span to send for a `Range` header on a blob of `size` bytes.

    `bytes=a-b` (b clamped to the last byte), `bytes=a-` and `bytes=-n` (the last n bytes) are honoured;
    no header, a header that does not match the blob (`if_range_matches` False), several ranges, other
    units or a malformed spec all get the whole blob (RFC 9110 lets a server ignore a Range it does not
    serve). RangeNotSatisfiable when the range starts at or past the end, or asks for the last 0 bytes.
    """
    whole = ByteSpan(0, size, size, partial=False)
    match = _SINGLE_RANGE.fullmatch(range_header.strip()) if range_header and if_range_matches else None
    if match is None or match.group(1) == match.group(2) == "":
        return whole
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"the last {suffix} bytes of {size}")
        return ByteSpan(max(size - suffix, 0), size, size, partial=True)
    start = int(first)
    if last != "" and int(last) < start:
        return whole
    if start >= size:
        raise RangeNotSatisfiable(f"bytes from {start} of {size}")
    end = size if last == "" else min(int(last) + 1, size)
    return ByteSpan(start, end, size, partial=True)
