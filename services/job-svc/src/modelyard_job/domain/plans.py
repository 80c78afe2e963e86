"""The training-job quota a plan sets (the plans themselves are shared: modelyard_events.plans).

Only creating a job counts
against the monthly quota; a retry is a new attempt of the same job and does not. Months are calendar
months in UTC, named `YYYY-MM`.
"""

from __future__ import annotations

from datetime import date

from modelyard_events.domain_errors import QuotaExceeded
from modelyard_events.plans import GB, PLANS, Plan, plan_named

__all__ = ["GB", "PLANS", "Plan", "check_job_quota", "month_of", "plan_named"]


def month_of(day: date) -> str:
    """The quota month a date falls in, as `YYYY-MM` (pass UTC dates)."""
    return f"{day.year:04d}-{day.month:02d}"


def check_job_quota(plan: Plan, jobs_this_month: int, month: str) -> None:
    """Return if the organization may create one more training job in `month`; else QuotaExceeded.

    `jobs_this_month` counts the jobs the organization already created in `month` (`YYYY-MM`).
    """
    limit = plan.training_jobs_per_month
    if jobs_this_month < limit:
        return
    if limit == 0:
        raise QuotaExceeded(
            f"the {plan.name} plan includes no training jobs (limit 0 a month), so none can be "
            f"created in {month}; move the organization to a plan with training jobs (Enterprise)"
        )
    raise QuotaExceeded(
        f"the {plan.name} plan allows {limit} training jobs a month and {jobs_this_month} were "
        f"already created in {month}; wait for next month or retry a failed job (retries do not count)"
    )
