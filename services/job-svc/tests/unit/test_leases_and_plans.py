"""Lease expiry and lost trainers from heartbeat times; the plans' training-job quota."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from modelyard_events.domain_errors import NotFound, QuotaExceeded
from modelyard_job.domain import (
    PLANS,
    ActiveLease,
    check_job_quota,
    expired_leases,
    lost_trainers,
    month_of,
    plan_named,
)

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def lease(dispatch_id: str = "d-1", trainer_id: str = "t-1", expires_in_s: int = 30) -> ActiveLease:
    return ActiveLease(
        job_id=f"j-{dispatch_id}",
        dispatch_id=dispatch_id,
        trainer_id=trainer_id,
        lease_expires_at=T0 + timedelta(seconds=expires_in_s),
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class TestExpiringLeases:
    def test_a_lease_whose_trainer_never_heartbeats_expires_at_its_recorded_deadline(self) -> None:
        assert expired_leases([lease()], {}, TTL, at(29.9)) == []
        assert expired_leases([lease()], {}, TTL, at(30)) == [lease()]

    def test_heartbeats_naming_the_dispatch_keep_its_lease_alive_past_its_first_deadline(self) -> None:
        renewals = {("d-1", "t-1"): at(50)}

        assert expired_leases([lease()], renewals, TTL, at(79)) == []
        assert expired_leases([lease()], renewals, TTL, at(80)) == [lease()]

    def test_a_heartbeat_renewing_another_dispatch_does_not_keep_this_one_alive(self) -> None:
        assert expired_leases([lease()], {("d-other", "t-1"): at(50)}, TTL, at(30)) == [lease()]

    def test_another_trainer_naming_the_dispatch_does_not_keep_its_lease_alive(self) -> None:
        renewed_by_b_only = {("d-1", "t-b"): at(50)}

        assert expired_leases([lease(trainer_id="t-a")], renewed_by_b_only, TTL, at(30)) == [
            lease(trainer_id="t-a")
        ]

    def test_the_own_trainers_renewal_counts_whatever_another_trainer_claims(self) -> None:
        renewals = {("d-1", "t-a"): at(50), ("d-1", "t-b"): at(500)}

        assert expired_leases([lease(trainer_id="t-a")], renewals, TTL, at(80)) == [lease(trainer_id="t-a")]

    def test_a_lease_never_expires_before_the_deadline_in_its_dispatch(self) -> None:
        stale_renewal = {("d-1", "t-1"): at(-100)}

        assert expired_leases([lease()], stale_renewal, TTL, at(10)) == []

    def test_only_the_unrenewed_leases_expire_oldest_deadline_first(self) -> None:
        leases = [lease("d-3", "t-1", 20), lease("d-2", "t-2", 20), lease("d-1", "t-1", 10)]
        heartbeats = {("d-1", "t-1"): at(0), ("d-3", "t-1"): at(0), ("d-2", "t-2"): at(100)}

        assert [x.dispatch_id for x in expired_leases(leases, heartbeats, TTL, at(120))] == ["d-1", "d-3"]

    def test_the_ttl_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="TTL must be positive"):
            expired_leases([lease()], {}, timedelta(0), T0)


class TestLosingTrainers:
    def test_a_trainer_is_lost_once_its_last_heartbeat_is_a_ttl_old(self) -> None:
        heartbeats = {"t-1": at(0), "t-2": at(5)}

        assert lost_trainers(heartbeats, TTL, at(29)) == []
        assert lost_trainers(heartbeats, TTL, at(30)) == ["t-1"]
        assert lost_trainers(heartbeats, TTL, at(40)) == ["t-1", "t-2"]

    def test_a_trainer_already_recorded_lost_is_not_reported_again(self) -> None:
        assert lost_trainers({"t-1": at(0)}, TTL, at(60), already_lost={"t-1"}) == []


class TestTheTrainingJobQuota:
    def test_the_plans_are_those_of_the_seeds(self) -> None:
        assert PLANS["professional"].training_jobs_per_month == 0
        assert PLANS["enterprise"].training_jobs_per_month == 10
        assert PLANS["enterprise"].dataset_bytes == 10 * 10**9
        assert PLANS["enterprise"].active_models_per_module == 5

    def test_the_professional_plan_creates_no_training_jobs(self) -> None:
        with pytest.raises(QuotaExceeded) as refused:
            check_job_quota(plan_named("professional"), 0, "2025-03")

        assert "Professional plan" in refused.value.message
        assert "limit 0 a month" in refused.value.message
        assert "2025-03" in refused.value.message

    def test_an_enterprise_organization_creates_up_to_ten_jobs_a_month(self) -> None:
        check_job_quota(plan_named("enterprise"), 9, "2025-03")

        with pytest.raises(QuotaExceeded) as refused:
            check_job_quota(plan_named("enterprise"), 10, "2025-03")
        assert refused.value.message.startswith(
            "the Enterprise plan allows 10 training jobs a month and 10 were already created in 2025-03"
        )

    def test_an_unknown_plan_is_not_found_and_the_known_ones_are_listed(self) -> None:
        with pytest.raises(
            NotFound, match="plan 'free' does not exist; known plans: enterprise, professional"
        ):
            plan_named("free")

    def test_the_quota_month_is_the_calendar_month(self) -> None:
        assert month_of(date(2025, 3, 31)) == "2025-03"
        assert month_of(datetime(2025, 12, 1, 0, 0, tzinfo=UTC)) == "2025-12"
