"""Counting created jobs against the organization's plan, safely across replicas."""

from __future__ import annotations

from modelyard_events.envelope import CommandContext
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.jobs import QUOTA_STREAM, JobQuotaUsed
from modelyard_events.store.ports import EventStore
from modelyard_job.domain.plans import Plan, check_job_quota

_RACE_RETRIES = 5


async def use_job_quota(
    store: EventStore, plan: Plan, org_id: str, month: str, job_id: str, context: CommandContext
) -> None:
    """Count `job_id` in `org_id`'s quota for `month`, or raise QuotaExceeded.

    Idempotent: a job already counted is not counted again (a retried CreateJob with the same
    request id). Concurrent creations race on the quota stream's version; the loser re-reads.
    """
    stream_id = f"{org_id}/{month}"
    for attempt in range(1, _RACE_RETRIES + 1):
        counted = await store.read_stream(stream_id)
        if any(e.data.get("job_id") == job_id for e in counted):
            return
        check_job_quota(plan, len(counted), month)
        used = JobQuotaUsed(org_id=org_id, month=month, job_id=job_id, plan=plan.key)
        try:
            await store.append(QUOTA_STREAM, stream_id, len(counted), [used], context)
            return
        except ConcurrencyConflict:
            if attempt == _RACE_RETRIES:
                raise
