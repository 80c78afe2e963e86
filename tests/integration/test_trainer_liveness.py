"""Heartbeat rows on the real PostgreSQL: a lease is renewed only by its own trainer's heartbeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard_job.domain import ActiveLease, expired_leases
from modelyard_job.liveness import Heartbeat, Liveness

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_another_trainer_naming_a_dispatch_neither_renews_it_nor_blocks_its_own_trainer(
    engine: AsyncEngine, unique_schema: str
) -> None:
    liveness = Liveness(engine, unique_schema)
    await liveness.create_tables()
    lease = ActiveLease("j-1", "d-1", "t-a", lease_expires_at=at(30))

    await liveness.record(Heartbeat("t-b", 1, [], at(10)), ["d-1"])  # B names A's dispatch first
    await liveness.record(Heartbeat("t-a", 1, [], at(20)), ["d-1"])
    await liveness.record(Heartbeat("t-b", 1, [], at(200)), ["d-1"])  # and keeps naming it
    renewals = await liveness.renewals(["d-1"])

    assert renewals == {("d-1", "t-a"): at(20), ("d-1", "t-b"): at(200)}
    assert expired_leases([lease], renewals, TTL, at(49)) == []  # A's own heartbeat at 20 s
    assert expired_leases([lease], renewals, TTL, at(50)) == [lease]  # B's at 200 s does not count
