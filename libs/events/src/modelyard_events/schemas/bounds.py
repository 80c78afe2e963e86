"""Caps on event fields, so that no event can come near the store's size limit (issue 11, item 2).

A relay publishes events one by one; a single event too big for the broker would stop it. So
every field of every event schema has a cap, and `size_bound.payload_bound_bytes` proves from the
schemas alone that the largest event each one allows stays far below the store's limit.

Two kinds of cap:

- identifiers, names, URIs, hashes, lists and maps: a hard cap (`max_length`). The producer checks
  its input first and refuses what is longer with an error that says so; an event never holds it.
- free text for people (reasons, details, error messages): longer text is cut to the cap and ends
  in a visible marker. Producers that keep the full text somewhere call `truncate_text` naming
  where (a file in the run folder, the gRPC error); the schema cuts whatever still arrives too
  long (a backstop, which also reads events stored before the caps without refusing them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

from modelyard_events.canonical import canonical_json
from modelyard_events.domain_errors import InvalidArgument

ID_MAX_CHARS = 200
NAME_MAX_CHARS = 200
URI_MAX_CHARS = 2048
SHA256_HEX_CHARS = 64
REASON_MAX_CHARS = 2000
DETAIL_MAX_CHARS = 500
JSON_OBJECT_MAX_BYTES = 16 * 1024

_MARKER = "… (truncated)"


def truncate_text(text: str, max_chars: int = REASON_MAX_CHARS, full_text_at: str | None = None) -> str:
    """`text` itself when it has at most `max_chars` characters; otherwise its beginning followed by a
    visible marker, `max_chars` characters in all.

    The marker reads "… (truncated; full text in <full_text_at>)" when the caller kept the whole text
    somewhere a person can fetch it (a file path, "the gRPC error"), else "… (truncated)".
    """
    if len(text) <= max_chars:
        return text
    marker = f"… (truncated; full text in {full_text_at})" if full_text_at else _MARKER
    if len(marker) > max_chars // 2:  # a place too long to name still leaves most of the text
        marker = _MARKER
    return text[: max(0, max_chars - len(marker))] + marker[:max_chars]


def identifier_problems(**ids: str | None) -> dict[str, str]:
    """Field → what to fix, for each of `ids` longer than an event's id field holds (ID_MAX_CHARS)."""
    return {
        field: f"must be at most {ID_MAX_CHARS} characters; got {len(value):,}"
        for field, value in ids.items()
        if value and len(value) > ID_MAX_CHARS
    }


def checked_identifier(value: str | None, field: str) -> str | None:
    """`value` when it fits an event's id field (None and "" mean "not given" and come back as None);
    InvalidArgument under `field` otherwise, before any event holds it."""
    problems = identifier_problems(**{field: value})
    if problems:
        raise InvalidArgument(field, problems[field])
    return value or None


@dataclass(frozen=True)
class TextCap:
    """Metadata of a free-text field: at most `max_chars` characters, longer text cut with a marker."""

    max_chars: int


@dataclass(frozen=True)
class JsonCap:
    """Metadata of a JSON object field: its canonical JSON has at most `max_bytes` bytes (UTF-8)."""

    max_bytes: int


def _cut_to(max_chars: int) -> Callable[[Any], Any]:
    def cut(value: Any) -> Any:
        return truncate_text(value, max_chars) if isinstance(value, str) else value

    return cut


def _json_at_most(max_bytes: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(value: dict[str, Any]) -> dict[str, Any]:
        size = len(canonical_json(value).encode())
        if size > max_bytes:
            raise ValueError(f"holds {size:,} bytes of JSON; at most {max_bytes:,} are allowed")
        return value

    return check


Identifier = Annotated[str, Field(max_length=ID_MAX_CHARS)]
"""An id (of a dataset, job, dispatch, upload, request, organization) or a token's subject."""
Name = Annotated[str, Field(max_length=NAME_MAX_CHARS)]
"""Something a person named or a short word of a fixed vocabulary (a device, a media type)."""
Uri = Annotated[str, Field(max_length=URI_MAX_CHARS)]
"""A dataset, checkpoint or artifact URI."""
Sha256Hex = Annotated[str, Field(max_length=SHA256_HEX_CHARS)]
"""A SHA-256 in lowercase hex."""
Reason = Annotated[str, BeforeValidator(_cut_to(REASON_MAX_CHARS)), TextCap(REASON_MAX_CHARS)]
"""Why something happened, for a person: at most REASON_MAX_CHARS characters (cut with a marker)."""
Detail = Annotated[str, BeforeValidator(_cut_to(DETAIL_MAX_CHARS)), TextCap(DETAIL_MAX_CHARS)]
"""A short measured explanation (a readiness check's detail): at most DETAIL_MAX_CHARS characters."""
JsonObject = Annotated[
    dict[str, Any], AfterValidator(_json_at_most(JSON_OBJECT_MAX_BYTES)), JsonCap(JSON_OBJECT_MAX_BYTES)
]
"""A free-form JSON object (validated hyperparameters) of at most JSON_OBJECT_MAX_BYTES bytes."""
