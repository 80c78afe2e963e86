"""Formatting of single values: states, times, durations, percentages, metrics."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.text import Text

from modelyard.v1 import jobs_pb2
from modelyard_cli.terminal_text import printable
from modelyard_events.plans import human_bytes

MISSING = "-"
FINISHED_STATES = frozenset(
    {jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}
)


def present(message: Message, field: str) -> Any:
    """The value of an optional or message field, or None when it is not set."""
    return getattr(message, field) if message.HasField(field) else None


def state_name(state: int) -> str:
    """JOB_STATE_QUEUED → "queued"."""
    return jobs_pb2.JobState.Name(state).removeprefix("JOB_STATE_").lower()


def parse_state(name: str) -> str:
    """ "queued" (or "JOB_STATE_QUEUED") → "JOB_STATE_QUEUED"; ValueError naming the valid states."""
    wanted = f"JOB_STATE_{name.strip().upper().removeprefix('JOB_STATE_')}"
    if wanted not in jobs_pb2.JobState.keys() or wanted == "JOB_STATE_UNSPECIFIED":  # noqa: SIM118
        valid = ", ".join(state_name(v) for v in jobs_pb2.JobState.values() if v)
        raise ValueError(f"unknown job state {name!r}; one of: {valid}")
    return wanted


def format_time(ts: Timestamp | None) -> str:
    """A timestamp in UTC, to the second: `2025-01-02 12:00:01Z`."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return MISSING
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_duration(seconds: float | None) -> str:
    """`45s`, `3m 05s`, `2h 07m`; `-` when unknown."""
    if seconds is None:
        return MISSING
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def format_percent(fraction: float | None) -> str:
    """0.425 → `42.5%`; `-` when unknown."""
    return MISSING if fraction is None else f"{fraction * 100:.1f}%"


def format_metric(value: float | None) -> str:
    """A loss or metric with four decimals; `-` when unknown."""
    return MISSING if value is None else f"{value:.4f}"


def format_rate(samples_per_s: float | None) -> str:
    """Throughput: `1,234.5 samples/s`; `-` when unknown or zero."""
    return f"{samples_per_s:,.1f} samples/s" if samples_per_s else MISSING


def format_optional(value: object) -> str:
    """str(value), or `-` for None and empty strings."""
    return MISSING if value is None or value == "" else str(value)


def cells(*values: object) -> list[Text]:
    """Table cells as plain text: names from the server are never read as rich markup, nor can they
    drive the terminal (`terminal_text.printable`)."""
    return [Text(printable(format_optional(v))) for v in values]


def format_bytes(size_bytes: int | None) -> str:
    """Decimal units, as plans are sold: 1536 → `1.5 kB`, 0 → `0 B`; `-` when unknown."""
    return MISSING if size_bytes is None else human_bytes(size_bytes)
