"""job-svc's jobs for the mobile status: the active ones and the latest, read with deploy-svc's own token.

job-svc lets auditors (and an org_admin, within its organization) call ListJobs; deploy-svc's token
is issued for that. Any failure to read is DependencyUnavailable naming job-svc, so the caller can
still answer with the fleet and say the jobs could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from grpc import aio

from modelyard.v1 import jobs_pb2, jobs_pb2_grpc
from modelyard_grpc import DependencyUnavailable

_ACTIVE = [
    jobs_pb2.JOB_STATE_PENDING,
    jobs_pb2.JOB_STATE_QUEUED,
    jobs_pb2.JOB_STATE_RUNNING,
    jobs_pb2.JOB_STATE_PAUSED,
]
RECENT_JOBS = 20
MAX_ACTIVE_JOBS = 200
_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class JobLine:
    """One training job as the mobile status shows it."""

    job_id: str
    name: str
    state: str  # pending, queued, running, paused, completed, failed, cancelled
    progress: float  # 0..1
    updated_at: datetime | None


class JobStatusClient:
    """Reads jobs from job-svc's JobService over `channel` (which carries deploy-svc's token)."""

    def __init__(self, channel: aio.Channel) -> None:
        self._stub = jobs_pb2_grpc.JobServiceStub(channel)

    async def jobs(self, org_id: str) -> list[JobLine]:
        """The organization's active jobs, then its latest RECENT_JOBS others, newest first."""
        try:
            active = await self._stub.ListJobs(
                jobs_pb2.ListJobsRequest(org_id=org_id, states=_ACTIVE, page_size=MAX_ACTIVE_JOBS),
                timeout=_TIMEOUT_S,
            )
            recent = await self._stub.ListJobs(
                jobs_pb2.ListJobsRequest(org_id=org_id, page_size=RECENT_JOBS), timeout=_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            raise DependencyUnavailable(
                f"job-svc could not list jobs: {error.code().name} {error.details() or ''}".strip()
            ) from None
        seen: set[str] = set()
        lines = []
        for job in [*active.jobs, *recent.jobs]:
            if job.job_id not in seen:
                seen.add(job.job_id)
                lines.append(_line(job))
        return lines


def _line(job: jobs_pb2.Job) -> JobLine:
    state = jobs_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_").lower()
    progress = 1.0 if state == "completed" else (job.progress if job.HasField("progress") else 0.0)
    updated = job.updated_at.ToDatetime(tzinfo=UTC) if job.HasField("updated_at") else None
    return JobLine(job.job_id, job.name, state, progress, updated)
