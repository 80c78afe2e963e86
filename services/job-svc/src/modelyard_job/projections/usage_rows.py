"""What each event changes in an organization's usage (issue 14 item 6): pure, no I/O.

Each figure counts exactly what the service that enforces its limit counts, from the events that
service's enforcement itself appends or reads, so the view never disagrees with a refusal:

- jobs this month: job-svc's quota stream holds one JobQuotaUsed per job counted against the
  organization's month (`app/quota.py`: only creating a training job counts; retries and evaluation
  jobs append none; the month is the UTC calendar month the job was created in, as the event names
  it). A job counted twice in the stream would be counted once, as the enforcement does.
- dataset bytes: dataset-svc's storage ledger (`domain/storage.py`): every charge, release and
  freeing carries the ledger's new total, which is what the next upload is checked against.
- active models per module: registry-svc's rule (`ModelModule.active`): a version is active from
  its first ModelReleased until its ModelDeprecated (final); releasing it in a second environment
  does not count it twice.

Rows are keyed by what they count (a job id, a version id), never incremented, so applying an event
twice changes nothing and a replay into a fresh schema holds the very same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard_events.envelope import DomainEvent
from modelyard_events.schemas.datasets import (
    DatasetStorageCharged,
    DatasetStorageFreed,
    DatasetStorageReleased,
)
from modelyard_events.schemas.jobs import JobQuotaUsed
from modelyard_events.schemas.registry import ModelDeprecated, ModelReleased


@dataclass(frozen=True)
class JobCounted:
    """One job counted against the organization's monthly training-job quota."""

    org_id: str
    month: str  # YYYY-MM, UTC
    job_id: str


@dataclass(frozen=True)
class StorageTotal:
    """The organization's dataset bytes after a ledger event."""

    org_id: str
    total_bytes: int


@dataclass(frozen=True)
class ModelActivity:
    """A version became active (released) or stopped being active (deprecated)."""

    org_id: str
    ai_module: str
    version_id: str
    active: bool


UsageChange = JobCounted | StorageTotal | ModelActivity


def usage_change(event: DomainEvent) -> UsageChange | None:
    """The usage row change `event` implies, or None for the events usage does not count."""
    if isinstance(event, JobQuotaUsed):
        return JobCounted(event.org_id, event.month, event.job_id)
    if isinstance(event, DatasetStorageCharged | DatasetStorageReleased | DatasetStorageFreed):
        return StorageTotal(event.org_id, event.total_bytes)
    if isinstance(event, ModelReleased):
        return ModelActivity(event.org_id, event.ai_module, event.version_id, active=True)
    if isinstance(event, ModelDeprecated):
        return ModelActivity(event.org_id, event.ai_module, event.version_id, active=False)
    return None


@dataclass(frozen=True)
class Usage:
    """An organization's usage as the tables hold it (what GetUsage answers, limits aside)."""

    jobs_this_month: int
    dataset_bytes: int
    active_models: dict[str, int]  # ai_module → active versions (modules with none are left out)


def left(used: int, limit: int | None) -> int | None:
    """What is left under `limit` (None: unlimited); never negative (a lowered limit may be passed)."""
    return None if limit is None else max(0, limit - used)
