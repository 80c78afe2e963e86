"""The plans an organization can be on (DESIGN §6), shared by every service that enforces a limit.

Plans are configuration data: the seeded limits live in `PLANS`; a deployment may change a limit with
`MODELYARD_PLAN_LIMITS` (JSON, e.g. `{"enterprise": {"dataset_bytes": 20000000000}}`) and chooses each
organization's plan with `MODELYARD_ORG_PLANS` / `MODELYARD_DEFAULT_PLAN` (`PlanChoice`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pydantic import BaseModel, Field

from modelyard_events.domain_errors import NotFound

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


class PlanChoice(BaseModel):
    """Settings fields (mixed into a service's settings) that say which plan an organization is on."""

    org_plans: dict[str, str] = Field(default_factory=dict)  # JSON: {"acme": "enterprise"}
    default_plan: str = "enterprise"
    plan_limits: dict[str, dict[str, int | None]] = Field(default_factory=dict)  # JSON overrides

    def plan_of(self, org_id: str) -> Plan:
        """The plan an organization is on, with any configured limit overrides applied."""
        plan = plan_named(self.org_plans.get(org_id, self.default_plan))
        overrides = self.plan_limits.get(plan.key, {})
        return replace(plan, **overrides) if overrides else plan  # type: ignore[arg-type]


def human_bytes(size_bytes: int) -> str:
    """A byte count in decimal units (kB, MB, GB, TB: powers of 1000, as plans are sold), e.g. '1.5 GB'."""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    units = ("kB", "MB", "GB", "TB", "PB")
    value, index = size_bytes / 1000, 0
    while round(value, 1) >= 1000 and index < len(units) - 1:
        value, index = value / 1000, index + 1
    return f"{value:.1f}".removesuffix(".0") + f" {units[index]}"
