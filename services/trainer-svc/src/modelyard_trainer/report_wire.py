"""Trainer reports on the wire between workers and trainer-svc (`modelyard.v1.TrainerReports`).

Both sides share the request bounds: a worker never sends more than the servicer accepts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from modelyard.v1 import trainer_pb2
from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import CommandContext, payload_of
from modelyard_events.schemas.training import TrainingReport

MAX_REPORTS_PER_APPEND = 100
MAX_REPORT_BYTES_PER_APPEND = 1024 * 1024
"""Payload bytes (canonical JSON) of one request; an event holds at most 256 KiB, so any fits."""


def report_to_proto(report: TrainingReport) -> trainer_pb2.ReportEvent:
    """A report as its type name and canonical JSON payload."""
    return trainer_pb2.ReportEvent(type=report.type_name, data_json=canonical_json(payload_of(report)))


def append_request(
    dispatch_id: str, expected_version: int, reports: Sequence[TrainingReport], context: CommandContext
) -> trainer_pb2.AppendReportsRequest:
    """The request appending `reports` to the dispatch's stream at `expected_version`.

    The actor is not sent: trainer-svc records the caller its token proves.
    """
    request = trainer_pb2.AppendReportsRequest(
        dispatch_id=dispatch_id,
        expected_version=expected_version,
        reports=[report_to_proto(report) for report in reports],
        correlation_id=context.correlation_id or "",
    )
    if context.org_id is not None:
        request.org_id = context.org_id
    if context.causation_id is not None:
        request.causation_id = context.causation_id
    return request


def report_batches(reports: Sequence[TrainingReport]) -> Iterator[Sequence[TrainingReport]]:
    """`reports` in order, cut into appends within MAX_REPORTS_PER_APPEND and MAX_REPORT_BYTES_PER_APPEND.

    A report alone over the byte bound still goes alone (trainer-svc then says why it refuses it).
    """
    start, size = 0, 0
    for index, report in enumerate(reports):
        report_bytes = len(canonical_json(payload_of(report)).encode())
        full = index - start == MAX_REPORTS_PER_APPEND or size + report_bytes > MAX_REPORT_BYTES_PER_APPEND
        if full and index > start:
            yield reports[start:index]
            start, size = index, 0
        size += report_bytes
    if start < len(reports):
        yield reports[start:]
