"""Time travel in job-svc: a job as its log said it was at an instant (folded as commands fold it)."""

from __future__ import annotations

from datetime import datetime

from modelyard_events.as_of import AsOfReader, AsOfResult, plain, recorded_by
from modelyard_events.schemas.jobs import JOB_EVENTS, JOB_STREAM
from modelyard_events.store.ports import EventStore
from modelyard_job.domain.job import TrainingJob


def job_as_of(store: EventStore) -> AsOfReader:
    """`job` for StateAsOf: the job's events recorded by the instant; None when it was not created yet."""

    async def read(job_id: str, at: datetime) -> AsOfResult | None:
        stored = recorded_by(await store.read_stream(job_id), at)
        if not stored or stored[0].stream_type != JOB_STREAM:  # another kind of stream, not a job
            return None
        job = TrainingJob.rebuild(job_id, (JOB_EVENTS.decode(e) for e in stored))
        return AsOfResult(job.org_id, plain(job), len(stored), stored[-1].occurred_at)

    return read
