"""A thin test client of job-svc: the stubs behind one channel, and waits on a job's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import struct_pb2

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel

FINISHED = {jobs_pb2.JOB_STATE_COMPLETED, jobs_pb2.JOB_STATE_FAILED, jobs_pb2.JOB_STATE_CANCELLED}


@dataclass
class JobClient:
    """JobService and QueryService stubs on one authenticated channel."""

    jobs: jobs_pb2_grpc.JobServiceStub
    queries: jobs_pb2_grpc.QueryServiceStub

    @classmethod
    @asynccontextmanager
    async def connect(cls, target: str, token: str) -> AsyncIterator[JobClient]:
        """A client for the block."""
        async with channel(target, token) as ch:
            yield cls(jobs_pb2_grpc.JobServiceStub(ch), jobs_pb2_grpc.QueryServiceStub(ch))

    async def create(
        self, org_id: str, dataset_uri: str, priority: int = 50, **hyperparameters: Any
    ) -> jobs_pb2.Job:
        """A digits image-classifier job for `org_id`."""
        values = struct_pb2.Struct()
        values.update(hyperparameters or {"epochs": 2})
        request = jobs_pb2.CreateJobRequest(
            name="digits test",
            ai_module="digit-reader",
            family="image_classifier",
            dataset_uri=dataset_uri,
            hyperparameters=values,
            priority=priority,
            org_id=org_id,
        )
        return await self.jobs.CreateJob(request)

    async def get(self, job_id: str) -> jobs_pb2.Job:
        """The job as the views show it now."""
        return await self.jobs.GetJob(jobs_pb2.JobRef(job_id=job_id))

    async def wait_for(self, job_id: str, state: int, timeout_s: float = 120) -> jobs_pb2.Job:
        """Wait until the job is in `state` (fails early when it finishes in another state)."""
        seen: list[jobs_pb2.Job] = []

        async def reached() -> bool:
            job = await self._get_when_visible(job_id)
            if job is None:
                return False
            seen.append(job)
            if job.state in FINISHED and job.state != state:
                raise AssertionError(
                    f"job finished {jobs_pb2.JobState.Name(job.state)}: {job.failure_reason}"
                )
            return job.state == state

        await eventually(reached, timeout_s, f"job {job_id} {jobs_pb2.JobState.Name(state)}")
        return seen[-1]

    async def wait_until(self, job_id: str, test: Any, what: str, timeout_s: float = 120) -> jobs_pb2.Job:
        """Wait until `test(job)` holds."""
        seen: list[jobs_pb2.Job] = []

        async def holds() -> bool:
            job = await self._get_when_visible(job_id)
            if job is None:
                return False
            seen.append(job)
            return bool(test(job))

        await eventually(holds, timeout_s, what)
        return seen[-1]

    async def _get_when_visible(self, job_id: str) -> jobs_pb2.Job | None:
        # A job just created reaches the views a moment after CreateJob returns.
        try:
            return await self.get(job_id)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    async def epochs(self, job_id: str) -> list[tuple[int, int]]:
        """(attempt, epoch) of every epoch in the metrics history."""
        history = await self.queries.GetMetricsHistory(jobs_pb2.JobRef(job_id=job_id))
        return [(e.attempt, e.epoch) for e in history.epochs]

    async def event_types(self, job_id: str) -> list[str]:
        """The types of the job's timeline, in order."""
        response = await self.queries.GetJobEvents(jobs_pb2.JobRef(job_id=job_id))
        return [e.type for e in response.events]
