"""Values as the pages print them: durations, percentages, rates, bytes, times.

Where the CLI already formats a value, the console says it the same way (`modelyard_cli.render.values`).
"""

from __future__ import annotations

from datetime import UTC

from google.protobuf.timestamp_pb2 import Timestamp

from modelyard_cli.render.values import (
    MISSING,
    format_bytes,
    format_duration,
    format_metric,
    format_percent,
    format_time,
)

__all__ = [
    "MISSING",
    "format_bytes",
    "format_duration",
    "format_metric",
    "format_percent",
    "format_rate",
    "format_time",
    "iso_time",
]


def format_rate(samples_per_s: float | None) -> str:
    """`1,234.5/s`: short enough for a table cell; `-` when unknown or zero."""
    return f"{samples_per_s:,.1f}/s" if samples_per_s else MISSING


def iso_time(ts: Timestamp | None) -> str:
    """An ISO 8601 UTC time for machines (the page's script ticks elapsed time from it); "" when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return ""
    return ts.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")
