"""job-svc's change notices: the shared ViewChanges (modelyard_events.notifications) keyed by job id.

The views announce each change with pg_notify in the transaction that makes it (so a notice means
the change is visible); WatchJob streams subscribe per job, the dispatcher to every notice.
"""

from __future__ import annotations

from modelyard_events.notifications import Notice
from modelyard_events.notifications import ViewChanges as _SharedViewChanges

__all__ = ["JOB_KEY_FIELD", "Notice", "ViewChanges"]

JOB_KEY_FIELD = "job_id"
"""The payload field the views write the job id into (projections/views.py `_announce`)."""


class ViewChanges(_SharedViewChanges):
    """ViewChanges over the views' channel, whose notices name a job_id and a kind.

    Kinds: queued, state, progress, epoch, report, logs or trainer ("" job for trainers).
    """

    def __init__(self, database_url: str, channel: str) -> None:
        super().__init__(database_url, channel, key_field=JOB_KEY_FIELD)
