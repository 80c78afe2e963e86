"""Whose a dispatch is, as job-svc recorded it: asked before a dispatch's first report is stored.

A report stream's first writer is its only writer (report_service.py). Without this check any
trainer token could open the stream of a dispatch made to another trainer (dispatch ids travel on
the untrusted broker) and lock the real trainer out of its own run. job-svc answers from the
job's stream in its store (TrainerService/GetDispatch), to trainer-svc's own auditor token.

Every failure to get an answer is retryable for the worker (UNAVAILABLE): an expired or refused
token, or a job-svc without GetDispatch (older than this trainer-svc: upgrade job-svc first), is
an operator's fix, logged here as an error; failing the runs instead would fail every job of the
fleet as poison once their dispatches lapsed often enough.
"""

from __future__ import annotations

import logging
from typing import Protocol

import grpc
from grpc import aio

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.jobs import DispatchRecord
from modelyard_grpc import DependencyUnavailable, dependency_refusal

log = logging.getLogger(__name__)


class DispatchLookup(Protocol):
    """Finds a job's dispatch in job-svc's log."""

    async def dispatch(self, job_id: str, dispatch_id: str) -> DispatchRecord | None:
        """The dispatch, or None when job-svc made no such dispatch of that job.

        DependencyUnavailable when job-svc gives no answer (the worker retries)."""
        ...


class GrpcDispatchLookup:
    """Asks job-svc's TrainerService/GetDispatch over `channel` (which carries trainer-svc's token)."""

    def __init__(self, channel: aio.Channel, *, timeout_s: float = 10.0) -> None:
        self._stub = jobs_pb2_grpc.TrainerServiceStub(channel)
        self._timeout_s = timeout_s

    async def dispatch(self, job_id: str, dispatch_id: str) -> DispatchRecord | None:
        """See DispatchLookup; job-svc's INVALID_ARGUMENT is the report's (InvalidArgument)."""
        request = jobs_pb2.DispatchRef(job_id=job_id, dispatch_id=dispatch_id)
        try:
            reply: jobs_pb2.Dispatch = await self._stub.GetDispatch(request, timeout=self._timeout_s)
        except aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(
                    "reports[0].data_json", error.details() or "job-svc refused it"
                ) from None
            raise _unanswered(error, f"dispatch {dispatch_id} of job {job_id}") from error
        org_id = reply.org_id if reply.HasField("org_id") else None
        return DispatchRecord(
            reply.job_id,
            reply.dispatch_id,
            reply.attempt,
            reply.trainer_id,
            org_id,
            reply.event_id,
            reply.correlation_id,
        )


def _unanswered(error: aio.AioRpcError, what: str) -> DependencyUnavailable:
    if error.code() == grpc.StatusCode.UNIMPLEMENTED:
        fix = f"job-svc has no TrainerService/GetDispatch, so it cannot confirm {what}: upgrade job-svc first"
    else:
        refusal = dependency_refusal(error, "job-svc", what, caller="trainer-svc")
        if isinstance(refusal, DependencyUnavailable):
            return refusal
        fix = str(refusal)
    log.error("cannot tell whose a dispatch is, so no new report stream opens: %s", fix)
    return DependencyUnavailable(f"job-svc did not say whose {what} is; trainer-svc's operator is told")


class KnownDispatches:
    """A DispatchLookup over dispatches given to it: for tests of trainer-svc without job-svc."""

    def __init__(self, *dispatches: DispatchRecord) -> None:
        self._known = {(d.job_id, d.dispatch_id): d for d in dispatches}
        self.asked = 0  # how many times a dispatch was looked up

    def add(self, dispatch: DispatchRecord) -> None:
        """Know `dispatch` from now on."""
        self._known[(dispatch.job_id, dispatch.dispatch_id)] = dispatch

    async def dispatch(self, job_id: str, dispatch_id: str) -> DispatchRecord | None:
        """See DispatchLookup."""
        self.asked += 1
        return self._known.get((job_id, dispatch_id))
