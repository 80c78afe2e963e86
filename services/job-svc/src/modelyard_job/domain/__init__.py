"""job-svc's domain: the TrainingJob aggregate, queue order, leases and plans. No I/O, no frameworks."""

from modelyard_job.domain.evolution import Dispatch
from modelyard_job.domain.job import TrainingJob
from modelyard_job.domain.job_spec import InvalidJobSpec
from modelyard_job.domain.leases import ActiveLease, expired_leases, lease_deadline, lost_trainers
from modelyard_job.domain.plans import PLANS, Plan, check_job_quota, month_of, plan_named
from modelyard_job.domain.queue import (
    PlannedDispatch,
    QueueEntry,
    TrainerCapacity,
    order_queue,
    plan_dispatches,
)
from modelyard_job.domain.transitions import TERMINAL_STATES, UNFINISHED_STATES, JobState

__all__ = [
    "PLANS",
    "TERMINAL_STATES",
    "UNFINISHED_STATES",
    "ActiveLease",
    "Dispatch",
    "InvalidJobSpec",
    "JobState",
    "Plan",
    "PlannedDispatch",
    "QueueEntry",
    "TrainerCapacity",
    "TrainingJob",
    "check_job_quota",
    "expired_leases",
    "lease_deadline",
    "lost_trainers",
    "month_of",
    "order_queue",
    "plan_dispatches",
    "plan_named",
]
