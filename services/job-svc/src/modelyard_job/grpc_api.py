"""JobService: translate protobuf ⇄ commands and reads, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from grpc import aio
from typing_extensions import override

from modelyard.v1 import events_pb2, jobs_pb2, jobs_pb2_grpc
from modelyard_events.caller import Caller
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.bounds import checked_identifier
from modelyard_events.store.ports import EventSource
from modelyard_grpc import caller_of, current_principal, read_events
from modelyard_job.app import JobCommands, NewJob
from modelyard_job.convert import dict_from_struct, state_from_proto
from modelyard_job.domain import TrainingJob
from modelyard_job.job_reads import (
    JobReads,
    checked_page_size,
    decode_page_token,
    encode_page_token,
    required_job_id,
)
from modelyard_job.notifications import ViewChanges
from modelyard_job.watch import watch_job

Context = aio.ServicerContext[Any, Any]
JobCommand = Callable[[str, str, Caller, int], Awaitable[TrainingJob]]
DEFAULT_PRIORITY = 50


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    """modelyard.v1.JobService over JobCommands and the views."""

    def __init__(
        self, commands: JobCommands, reads: JobReads, log: EventSource, changes: ViewChanges
    ) -> None:
        self._commands, self._reads, self._log, self._changes = commands, reads, log, changes

    @override
    async def CreateJob(self, request: jobs_pb2.CreateJobRequest, context: Context) -> jobs_pb2.Job:
        job = await self._commands.create(new_job_of(request), caller_of(context))
        return await self._reads.after_command(job)

    @override
    async def GetJob(self, request: jobs_pb2.JobRef, context: Context) -> jobs_pb2.Job:
        return await self._reads.message(request.job_id)

    @override
    async def ListJobs(
        self, request: jobs_pb2.ListJobsRequest, context: Context
    ) -> jobs_pb2.ListJobsResponse:
        size = checked_page_size(request.page_size)
        states = [state_from_proto(s) for s in request.states]
        async with self._reads.engine.connect() as conn:
            rows = await self._reads.reader.page(
                conn,
                states=states,
                org_id=request.org_id,
                ai_module=request.ai_module,
                size=size + 1,
                after=decode_page_token(request.page_token),
            )
            page, more = rows[:size], len(rows) > size
            jobs = await self._reads.messages(conn, page)
        token = encode_page_token(page[-1]) if more else ""
        return jobs_pb2.ListJobsResponse(jobs=jobs, next_page_token=token)

    @override
    async def CancelJob(self, request: jobs_pb2.JobCommand, context: Context) -> jobs_pb2.Job:
        return await self._run(self._commands.cancel, request, context)

    @override
    async def PauseJob(self, request: jobs_pb2.JobCommand, context: Context) -> jobs_pb2.Job:
        return await self._run(self._commands.pause, request, context)

    @override
    async def ResumeJob(self, request: jobs_pb2.JobCommand, context: Context) -> jobs_pb2.Job:
        return await self._run(self._commands.resume, request, context)

    @override
    async def RetryJob(self, request: jobs_pb2.JobCommand, context: Context) -> jobs_pb2.Job:
        return await self._run(self._commands.retry, request, context)

    @override
    async def SetPriority(self, request: jobs_pb2.SetPriorityRequest, context: Context) -> jobs_pb2.Job:
        job_id = required_job_id(request.job_id)
        job = await self._commands.set_priority(
            job_id, request.priority, caller_of(context), request.expected_version
        )
        return await self._reads.after_command(job)

    @override
    async def WatchJob(
        self, request: jobs_pb2.WatchJobRequest, context: Context
    ) -> AsyncIterator[jobs_pb2.JobUpdate]:
        async for update in watch_job(self._reads, self._changes, request.job_id):
            yield update

    async def _run(self, command: JobCommand, request: jobs_pb2.JobCommand, context: Context) -> jobs_pb2.Job:
        job_id = required_job_id(request.job_id)
        job = await command(job_id, request.reason, caller_of(context), request.expected_version)
        return await self._reads.after_command(job)

    @override
    async def ReadEvents(
        self, request: events_pb2.ReadEventsRequest, context: Context
    ) -> events_pb2.ReadEventsResponse:
        return await read_events(self._log, request)


def new_job_of(request: jobs_pb2.CreateJobRequest) -> NewJob:
    """The job a CreateJob request asks for (EstimateJob reads the same request); the organization
    defaults to the caller's, InvalidArgument when neither names one."""
    org_id = checked_identifier(request.org_id or current_principal().org_id, "org_id")
    if not org_id:
        raise InvalidArgument("org_id", "your token names no organization; say which one the job is for")
    return NewJob(
        org_id=org_id,
        name=request.name,
        ai_module=request.ai_module,
        family=request.family,
        dataset_uri=request.dataset_uri,
        hyperparameters=dict_from_struct(request.hyperparameters),
        priority=request.priority if request.HasField("priority") else DEFAULT_PRIORITY,
        request_id=checked_identifier(request.request_id, "request_id"),
        base_version_id=checked_identifier(request.base_version_id, "base_version_id"),
        description=request.description,
    )
