"""The plans an organization can be on (DESIGN §6) and the training-job quota they set.

Plans are configuration data: the limits live in `PLANS`, not in code paths. Only creating a job counts
against the monthly quota; a retry is a new attempt of the same job and does not. Months are calendar
months in UTC, named `YYYY-MM`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from modelyard_events.domain_errors import NotFound, QuotaExceeded

GB = 10**9  # plans are sold in decimal gigabytes


@dataclass(frozen=True)
class Plan:
    """A plan's limits; None means the plan sets no limit on that resource."""

    key: str
    name: str
    training_jobs_per_month: int
    dataset_bytes: int | None
    active_models_per_module: int | None


PLANS: dict[str, Plan] = {
    "professional": Plan(
        key="professional",
        name="Professional",
        training_jobs_per_month=0,
        dataset_bytes=None,
        active_models_per_module=None,
    ),
    "enterprise": Plan(
        key="enterprise",
        name="Enterprise",
        training_jobs_per_month=10,
        dataset_bytes=10 * GB,
        active_models_per_module=5,
    ),
}


def plan_named(key: str) -> Plan:
    """The plan with this key ("professional", "enterprise"), or NotFound listing the known ones."""
    try:
        return PLANS[key]
    except KeyError:
        raise NotFound(f"plan {key!r} does not exist; known plans: {', '.join(sorted(PLANS))}") from None


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
