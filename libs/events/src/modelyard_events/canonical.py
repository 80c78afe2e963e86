"""Canonical JSON: the one byte form that hashes and stored payloads use.

Keys sorted by code point, no insignificant whitespace, UTF-8 without escaping
non-ASCII, NaN and infinities refused, floats in Python's shortest round-trip
form. Parsing canonical text and dumping it again gives the same text, which is
what lets `verify` recompute a hash from stored rows.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _chunks_encoder() -> Callable[[Any, int], Sequence[str]]:
    """The C encoder `_encoder.encode` builds anew at every call (a third of the time it takes
    for a small payload, and every append and hash encodes one), built once. Without the cycle
    check, whose dict it would share between calls: a cycle ends in RecursionError (below)."""
    make = getattr(json.encoder, "c_make_encoder", None)  # CPython's, not in the type stubs
    if make is None:  # an interpreter without the C accelerator
        return lambda value, _level: [_encoder.encode(value)]
    encoder: Callable[[Any, int], Sequence[str]] = make(
        None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
    return encoder


_encode_chunks = _chunks_encoder()


def canonical_json(value: Any) -> str:
    """Return the canonical JSON text of a JSON-compatible value.

    Raises ValueError for NaN or infinite floats and for a value that nests too deeply or holds
    itself, and TypeError for values that are not JSON types (dict with str keys, list, str,
    int, float, bool, None).
    """
    try:
        return "".join(_encode_chunks(value, 0))
    except RecursionError:
        raise ValueError("the value nests too deeply or holds itself: not JSON") from None


def canonical_timestamp(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 with microseconds and a Z.

    Always six fractional digits, so the text is a function of the instant alone.
    """
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    if utc.year < 1000:  # isoformat pads the year to four digits, strftime does not
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # isoformat is a third of strftime's time, and every envelope hashed or sent formats one.
    return f"{utc.isoformat(timespec='microseconds')[:-6]}Z"


def parse_timestamp(text: str) -> datetime:
    """Inverse of canonical_timestamp."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
