"""job-svc's log of a job that was dispatched: what a benchmark writes before its trainer reports.

job-svc's views apply a trainer's reports only for a dispatch they have applied the `JobDispatched`
of (earlier ones wait as early reports), so a benchmark that appends reports straight to the
trainers' log first writes the job's own log: created, queued, dispatched (lease an hour ahead).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.jobs import JobCreated, JobDispatched, JobQueued

JOB_STREAM = "training_job"
_DATASET = "dataset://org-1/ds-1/versions/1"


def dispatched_job(job_id: str, dispatch_id: str, trainer_id: str, epochs: int) -> list[DomainEvent]:
    """Created, queued and dispatched (attempt 1) to `trainer_id` under `dispatch_id`."""
    hyperparameters = {"epochs": epochs}
    return [
        JobCreated(
            job_id=job_id,
            org_id="org-1",
            name=job_id,
            ai_module="classifier",
            family="mlp",
            dataset_uri=_DATASET,
            hyperparameters=hyperparameters,
            priority=50,
            created_by="tester",
        ),
        JobQueued(job_id=job_id, attempt=1),
        JobDispatched(
            job_id=job_id,
            attempt=1,
            dispatch_id=dispatch_id,
            trainer_id=trainer_id,
            lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
            family="mlp",
            dataset_uri=_DATASET,
            hyperparameters=hyperparameters,
        ),
    ]
