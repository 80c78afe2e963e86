"""QueryService (reads over the views) and TrainerService (heartbeats, whose a dispatch is):
protobuf in, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from grpc import aio
from typing_extensions import override

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_events.domain_errors import InvalidFields
from modelyard_events.store.ports import EventStore
from modelyard_grpc import envelope_to_proto
from modelyard_job.app.dataset_gate import VersionLookup
from modelyard_job.app.dispatches import recorded_dispatch
from modelyard_job.app.estimates import estimate
from modelyard_job.app.trainers import TrainerFleet
from modelyard_job.convert import epoch_to_proto, estimate_to_proto, trainer_to_proto
from modelyard_job.domain.heartbeats import heartbeat_problems
from modelyard_job.grpc_api import new_job_of
from modelyard_job.job_logs import follow_job_logs, job_logs_page
from modelyard_job.job_reads import JobReads
from modelyard_job.liveness import Liveness
from modelyard_job.notifications import ViewChanges
from modelyard_job.projections.queries import trainer_rows

Context = aio.ServicerContext[Any, Any]


class QueryServicer(jobs_pb2_grpc.QueryServiceServicer):
    """modelyard.v1.QueryService over the job views."""

    def __init__(
        self,
        reads: JobReads,
        changes: ViewChanges,
        liveness: Liveness,
        lease_ttl: timedelta,
        clock: Callable[[], datetime],
        versions: VersionLookup | None = None,
        prices: Mapping[str, float] | None = None,
    ) -> None:
        self._reads, self._changes, self._liveness, self._ttl = reads, changes, liveness, lease_ttl
        self._clock = clock
        self._versions, self._prices = versions, dict(prices or {})

    @override
    async def EstimateJob(self, request: jobs_pb2.CreateJobRequest, context: Context) -> jobs_pb2.JobEstimate:
        wanted = new_job_of(request)
        found = await estimate(wanted, self._reads.engine, self._reads.reader, self._versions, self._prices)
        return estimate_to_proto(found)

    @override
    async def GetQueue(
        self, request: jobs_pb2.GetQueueRequest, context: Context
    ) -> jobs_pb2.GetQueueResponse:
        async with self._reads.engine.connect() as conn:
            rows = await self._reads.reader.queue(conn, request.org_id)
            jobs = await self._reads.messages(conn, rows)
        entries = [
            jobs_pb2.QueueEntry(position=r.queue_position or 0, job=j)
            for r, j in zip(rows, jobs, strict=True)
        ]
        return jobs_pb2.GetQueueResponse(entries=entries)

    @override
    async def GetMetricsHistory(
        self, request: jobs_pb2.JobRef, context: Context
    ) -> jobs_pb2.MetricsHistoryResponse:
        row = await self._reads.visible_row(request.job_id)
        async with self._reads.engine.connect() as conn:
            epochs = await self._reads.reader.epochs(conn, row.job_id)
        return jobs_pb2.MetricsHistoryResponse(job_id=row.job_id, epochs=[epoch_to_proto(e) for e in epochs])

    @override
    async def GetJobLogs(
        self, request: jobs_pb2.JobLogsRequest, context: Context
    ) -> jobs_pb2.JobLogsResponse:
        return await job_logs_page(self._reads, request)

    @override
    async def FollowJobLogs(
        self, request: jobs_pb2.JobLogsRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.JobLogsResponse]:
        async for page in follow_job_logs(self._reads, self._changes, request):
            yield page

    @override
    async def GetJobEvents(self, request: jobs_pb2.JobRef, context: Context) -> jobs_pb2.JobEventsResponse:
        row = await self._reads.visible_row(request.job_id)
        async with self._reads.engine.connect() as conn:
            envelopes = await self._reads.reader.timeline(conn, row.job_id)
        return jobs_pb2.JobEventsResponse(events=[envelope_to_proto(e) for e in envelopes])

    @override
    async def ListActiveJobs(
        self, request: jobs_pb2.ActiveJobsRequest, context: Context
    ) -> jobs_pb2.ListJobsResponse:
        async with self._reads.engine.connect() as conn:
            rows = await self._reads.reader.running(conn, request.org_id)
            return jobs_pb2.ListJobsResponse(jobs=await self._reads.messages(conn, rows))

    @override
    async def ListTrainers(
        self, request: jobs_pb2.ListTrainersRequest, context: Context
    ) -> jobs_pb2.ListTrainersResponse:
        heartbeats = await self._liveness.heartbeats()
        async with self._reads.engine.connect() as conn:
            rows = await trainer_rows(conn, self._reads.reader.schema, heartbeats, self._clock() - self._ttl)
        return jobs_pb2.ListTrainersResponse(trainers=[trainer_to_proto(r) for r in rows])


class TrainerServicer(jobs_pb2_grpc.TrainerServiceServicer):
    """modelyard.v1.TrainerService: liveness and capacity of trainer workers; whose a dispatch is."""

    def __init__(
        self, fleet: TrainerFleet, lease_ttl: timedelta, on_heartbeat: Callable[[], None], store: EventStore
    ) -> None:
        self._fleet, self._ttl, self._on_heartbeat = fleet, lease_ttl, on_heartbeat
        self._store = store

    @override
    async def Heartbeat(
        self, request: jobs_pb2.HeartbeatRequest, context: Context
    ) -> jobs_pb2.HeartbeatResponse:
        gpus, dispatch_ids = list(request.gpus), list(request.running_dispatch_ids)
        problems = heartbeat_problems(request.trainer_id, request.slots_total, gpus, dispatch_ids)
        if problems:
            raise InvalidFields(problems)
        await self._fleet.heartbeat(request.trainer_id, request.slots_total, gpus, dispatch_ids)
        self._on_heartbeat()
        return jobs_pb2.HeartbeatResponse(lease_ttl_s=self._ttl.total_seconds())

    @override
    async def GetDispatch(self, request: jobs_pb2.DispatchRef, context: Context) -> jobs_pb2.Dispatch:
        found = await recorded_dispatch(self._store, request.job_id, request.dispatch_id)
        return jobs_pb2.Dispatch(
            job_id=found.job_id,
            dispatch_id=found.dispatch_id,
            attempt=found.attempt,
            trainer_id=found.trainer_id,
            org_id=found.org_id,
            event_id=found.event_id,
            correlation_id=found.correlation_id,
        )
