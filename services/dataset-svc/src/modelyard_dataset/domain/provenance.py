"""A sample's provenance as its uploader gives it: source camera, capture time, free metadata (pure).

Checked when the file header arrives, before any of its bytes are staged, so a bad sheet costs the
client nothing but the header. Every problem is named `files.<filename>.<field>` with what to fix;
the caps are the event schema's (a sample's share of one SamplesAdded), the clock check is ours (an
event must decode the same at any later time, so the schema cannot compare with "now").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from modelyard_events.domain_errors import InvalidFields
from modelyard_events.schemas.datasets import (
    CAMERA_ID_MAX_CHARS,
    CAPTURED_AT_MAX_SKEW,
    METADATA_KEY_MAX_CHARS,
    METADATA_MAX_BYTES,
    METADATA_MAX_KEYS,
    METADATA_VALUE_MAX_CHARS,
    metadata_bytes,
)

_CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


@dataclass(frozen=True)
class Provenance:
    """Where a sample came from; every part optional (None: not given)."""

    source_camera_id: str | None = None
    captured_at: datetime | None = None
    metadata: dict[str, str] | None = None


NO_PROVENANCE = Provenance()


def checked_provenance(
    filename: str,
    source_camera_id: str | None,
    captured_at: datetime | None,
    metadata: Mapping[str, str] | None,
    now: datetime,
) -> Provenance:
    """The provenance of `filename` when it fits the caps; InvalidFields naming each field otherwise.

    "" and an empty map mean "not given" (protobuf cannot tell them apart from absent).
    """
    where = f"files.{filename}"
    problems: dict[str, str] = {}
    camera = source_camera_id or None
    if camera is not None:
        if len(camera) > CAMERA_ID_MAX_CHARS:
            problems[f"{where}.source_camera_id"] = (
                f"must be at most {CAMERA_ID_MAX_CHARS} characters; got {len(camera):,}"
            )
        elif not _CAMERA_ID.fullmatch(camera):
            problems[f"{where}.source_camera_id"] = (
                "must be an identifier: letters, digits, '.', '_', ':' or '-', "
                "starting with a letter or digit"
            )
    if captured_at is not None:
        if captured_at.tzinfo is None:
            problems[f"{where}.captured_at"] = "must carry a time zone (UTC recommended)"
        elif captured_at > now + CAPTURED_AT_MAX_SKEW:
            problems[f"{where}.captured_at"] = (
                f"{captured_at.isoformat()} is in the future (now is {now.isoformat()}; "
                f"at most {int(CAPTURED_AT_MAX_SKEW.total_seconds())} s of clock skew is allowed)"
            )
    kept = dict(metadata) if metadata else None
    if kept is not None:
        problem = _metadata_problem(kept)
        if problem is not None:
            problems[f"{where}.metadata"] = problem
    if problems:
        raise InvalidFields(problems)
    return Provenance(camera, captured_at, kept)


def _metadata_problem(metadata: dict[str, str]) -> str | None:
    if len(metadata) > METADATA_MAX_KEYS:
        return f"holds {len(metadata)} keys; at most {METADATA_MAX_KEYS} are allowed"
    for key, value in metadata.items():
        if not key:
            return "has an empty key; name every entry"
        if len(key) > METADATA_KEY_MAX_CHARS:
            return (
                f"key {key[:20]!r}… is {len(key):,} characters; at most {METADATA_KEY_MAX_CHARS} are allowed"
            )
        if len(value) > METADATA_VALUE_MAX_CHARS:
            return (
                f"the value of {key!r} is {len(value):,} characters; "
                f"at most {METADATA_VALUE_MAX_CHARS} are allowed"
            )
    size = metadata_bytes(metadata)
    if size > METADATA_MAX_BYTES:
        return f"holds {size:,} bytes as JSON; at most {METADATA_MAX_BYTES:,} are allowed per sample"
    return None
