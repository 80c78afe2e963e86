"""A job's events timeline and its training log as CSV (RFC 4180), beside its metrics
(metrics_series.metrics_csv). Every text cell that a trainer or a caller wrote is made spreadsheet
text, so an event type, a logger name or a log line cannot be a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from modelyard.v1 import events_pb2, jobs_pb2
from modelyard_console.metrics_series import spreadsheet_text

EVENT_COLUMNS = (
    "position", "occurred_at", "type", "schema_version", "actor", "roles", "org_id", "correlation_id",
    "data_json",
)  # fmt: skip
LOG_COLUMNS = ("attempt", "at", "level", "logger", "trainer_id", "dispatch_id", "message")


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """`rows` as CSV lines (CRLF ends, quoted where needed)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def event_row(event: events_pb2.EventEnvelope) -> list[object]:
    """One event of the timeline: where it is in the log, when, what, who, and its payload as stored."""
    return [
        event.position,
        _iso(event.occurred_at) if event.HasField("occurred_at") else "",
        spreadsheet_text(event.type),
        event.schema_version,
        spreadsheet_text(event.actor.subject),
        spreadsheet_text(" ".join(event.actor.roles)),
        spreadsheet_text(event.org_id),
        spreadsheet_text(event.correlation_id),
        spreadsheet_text(event.data_json),
    ]


def log_row(line: jobs_pb2.JobLogLine) -> list[object]:
    """One training log line."""
    return [
        line.attempt,
        _iso(line.at) if line.HasField("at") else "",
        spreadsheet_text(line.level),
        spreadsheet_text(line.logger),
        spreadsheet_text(line.trainer_id),
        spreadsheet_text(line.dispatch_id),
        spreadsheet_text(line.message),
    ]


def _iso(ts: Timestamp) -> str:
    """A timestamp as ISO 8601 in UTC (RFC 3339, as protobuf's JSON writes it): sorts as text."""
    return ts.ToJsonString()
