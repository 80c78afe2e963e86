"""The worker's side of `modelyard.v1.TrainerReports`: appends reports through trainer-svc.

A worker holds no database credentials and no signing key: trainer-svc appends (and signs) for
it. `GrpcReportLog` has the one method the report writer needs, with the store's errors:
ConcurrencyConflict with the stream's actual version, ReportsNotDelivered (an EventStoreError,
which the writer retries) when trainer-svc cannot be reached or did not answer in time, and any
other refusal raised as the gRPC error it is (the run stops).
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc import aio

from modelyard.v1 import trainer_pb2, trainer_pb2_grpc
from modelyard_events.envelope import CommandContext
from modelyard_events.errors import ConcurrencyConflict, EventStoreError
from modelyard_events.schemas.training import RUN_STREAM, TrainingReport
from modelyard_trainer.report_wire import append_request

_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class ReportsNotDelivered(EventStoreError):
    """trainer-svc was unreachable or slow: the append may or may not have happened (retry it)."""

    retryable = True


class GrpcReportLog:
    """Appends a run's reports to its stream in trainer-svc's store, over `channel`."""

    def __init__(self, channel: aio.Channel, *, timeout_s: float = 30.0) -> None:
        self._stub = trainer_pb2_grpc.TrainerReportsStub(channel)
        self._timeout_s = timeout_s

    async def append(
        self,
        stream_type: str,
        stream_id: str,
        expected_version: int,
        events: Sequence[TrainingReport],
        context: CommandContext,
    ) -> int:
        """Append `events` to stream (RUN_STREAM, stream_id) at `expected_version`; the new version.

        The context's actor is not sent: trainer-svc records the caller its token names.
        """
        if stream_type != RUN_STREAM:
            raise ValueError(f"trainer-svc appends reports to {RUN_STREAM} streams only, not {stream_type}")
        request = append_request(stream_id, expected_version, events, context)
        try:
            response: trainer_pb2.AppendReportsResponse = await self._stub.AppendReports(
                request, timeout=self._timeout_s
            )
        except aio.AioRpcError as error:
            if error.code() in _RETRYABLE:
                raise ReportsNotDelivered(f"trainer-svc: {error.code().name}: {error.details()}") from error
            raise
        if response.WhichOneof("result") == "conflict":
            raise ConcurrencyConflict(stream_id, expected_version, response.conflict.actual_version)
        return response.appended.stream_version
