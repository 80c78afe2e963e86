"""Whose a dispatch is, as job-svc recorded it: asked before a dispatch's first report is stored.

A report stream's first writer is its only writer (report_service.py). Without this check any
trainer token could open the stream of a dispatch made to another trainer (dispatch ids travel on
the untrusted broker) and lock the real trainer out of its own run. job-svc answers from the
job's stream in its store (TrainerService/GetDispatch), to trainer-svc's own auditor token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc
from grpc import aio

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_grpc import dependency_refusal


@dataclass(frozen=True)
class Dispatch:
    """One dispatch of a job: its run (attempt), the trainer it went to, the job's organization."""

    job_id: str
    dispatch_id: str
    attempt: int
    trainer_id: str
    org_id: str | None


class DispatchLookup(Protocol):
    """Finds a job's dispatch in job-svc's log."""

    async def dispatch(self, job_id: str, dispatch_id: str) -> Dispatch | None:
        """The dispatch, or None when job-svc made no such dispatch of that job.

        DependencyUnavailable when job-svc cannot answer now (the caller may retry),
        DependencyFailed when it refuses trainer-svc's token."""
        ...


class GrpcDispatchLookup:
    """Asks job-svc's TrainerService/GetDispatch over `channel` (which carries trainer-svc's token)."""

    def __init__(self, channel: aio.Channel, *, timeout_s: float = 10.0) -> None:
        self._stub = jobs_pb2_grpc.TrainerServiceStub(channel)
        self._timeout_s = timeout_s

    async def dispatch(self, job_id: str, dispatch_id: str) -> Dispatch | None:
        """See DispatchLookup."""
        request = jobs_pb2.DispatchRef(job_id=job_id, dispatch_id=dispatch_id)
        try:
            reply: jobs_pb2.Dispatch = await self._stub.GetDispatch(request, timeout=self._timeout_s)
        except aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            what = f"dispatch {dispatch_id} of job {job_id}"
            raise dependency_refusal(error, "job-svc", what, caller="trainer-svc") from error
        org_id = reply.org_id if reply.HasField("org_id") else None
        return Dispatch(reply.job_id, reply.dispatch_id, reply.attempt, reply.trainer_id, org_id)


class KnownDispatches:
    """A DispatchLookup over dispatches given to it: for tests of trainer-svc without job-svc."""

    def __init__(self, *dispatches: Dispatch) -> None:
        self._known = {(d.job_id, d.dispatch_id): d for d in dispatches}

    def add(self, dispatch: Dispatch) -> None:
        """Know `dispatch` from now on."""
        self._known[(dispatch.job_id, dispatch.dispatch_id)] = dispatch

    async def dispatch(self, job_id: str, dispatch_id: str) -> Dispatch | None:
        """See DispatchLookup."""
        return self._known.get((job_id, dispatch_id))
