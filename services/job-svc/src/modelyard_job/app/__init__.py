"""job-svc's use cases: load the aggregate, let it decide, append what it decided."""

from modelyard_events.caller import Caller
from modelyard_job.app.commands import JobCommands, NewJob, utc_now
from modelyard_job.app.ids import dispatch_id_for, job_id_for

__all__ = ["Caller", "JobCommands", "NewJob", "dispatch_id_for", "job_id_for", "utc_now"]
