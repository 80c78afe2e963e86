"""Helpers shared by the gRPC layer's tests: secrets, a seeded store, fake servicers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
from grpc import aio
from typing_extensions import override

from modelyard.v1 import events_pb2, jobs_pb2, jobs_pb2_grpc
from modelyard_events.envelope import Actor, CommandContext
from modelyard_events.store import InMemoryEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented, CounterOpened
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_grpc import current_principal, read_events

MintToken = Callable[..., str]
"""The `token` fixture: token(subject, org_id, roles, ttl_s=300)."""


async def seeded_store(streams: int = 3, increments: int = 4) -> InMemoryEventStore:
    """A store with `streams` counters of 1 + `increments` events each, then one odd event."""
    store = InMemoryEventStore(signer=TEST_SIGNER)
    for n in range(streams):
        events = [CounterOpened(name=f"counter-{n}")] + [
            CounterIncremented(amount=i, note="ünïcödé ✓ 0.1") for i in range(increments)
        ]
        await store.append("counter", f"c-{n}", 0, events, TEST_CONTEXT)
    caused = CommandContext(actor=Actor(subject="svc"), org_id=None, causation_id="e-1", correlation_id="k-1")
    await store.append("counter", "c-odd", 0, [CounterIncremented(amount=-(2**62), note='"\\\n')], caused)
    return store


def status_of(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """(code, details) of a failed call."""
    assert isinstance(error, aio.AioRpcError), error
    return error.code(), error.details() or ""


class EchoJobService(jobs_pb2_grpc.JobServiceServicer):
    """A JobService that reports who called it and with which request fields."""

    def __init__(self, store: InMemoryEventStore | None = None, failure: Exception | None = None) -> None:
        self._store = store or InMemoryEventStore(signer=TEST_SIGNER)
        self._failure = failure

    @override
    async def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: object) -> jobs_pb2.ListJobsResponse:
        return jobs_pb2.ListJobsResponse(next_page_token=f"{current_principal().subject}|{request.org_id}")

    @override
    async def GetJob(self, request: jobs_pb2.JobRef, context: object) -> jobs_pb2.Job:
        return jobs_pb2.Job(job_id=request.job_id)

    @override
    async def CancelJob(self, request: jobs_pb2.JobCommand, context: object) -> jobs_pb2.Job:
        if self._failure is not None:
            raise self._failure
        return jobs_pb2.Job(job_id=request.job_id, created_by=current_principal().subject)

    @override
    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: object
    ) -> AsyncIterator[jobs_pb2.JobUpdate]:
        for epoch in range(1, 3):
            job = jobs_pb2.Job(
                job_id=request.job_id, created_by=current_principal().subject, epochs_done=epoch
            )
            yield jobs_pb2.JobUpdate(job=job)
            if self._failure is not None:
                raise self._failure

    @override
    async def ReadEvents(
        self, request: events_pb2.ReadEventsRequest, context: object
    ) -> events_pb2.ReadEventsResponse:
        return await read_events(self._store, request)


class EchoTrainerService(jobs_pb2_grpc.TrainerServiceServicer):
    """A TrainerService whose Heartbeat answers with the trainer id it was given."""

    @override
    async def Heartbeat(
        self, request: jobs_pb2.HeartbeatRequest, context: object
    ) -> jobs_pb2.HeartbeatResponse:
        subject = current_principal().subject
        assert request.trainer_id in (subject, f"{subject}/pod-a")  # its own id, or a member of its pool
        return jobs_pb2.HeartbeatResponse(lease_ttl_s=30.0)
