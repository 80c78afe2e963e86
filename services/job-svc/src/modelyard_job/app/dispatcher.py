"""The dispatcher: expire leases of silent trainers, then give queued jobs to trainers with free slots.

One pass at a time across replicas (a PostgreSQL advisory lock), and only after the views have
applied everything in job-svc's log, so a pass never plans with a slot it already gave away.
Passes run when the views announce a change (a job queued, a job left running, a trainer appeared)
and at least every `sweep_every_s`, which is what notices a silent trainer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_events.caller import Caller
from modelyard_events.consumer.checkpoints import read_checkpoint
from modelyard_events.domain_errors import IllegalTransition
from modelyard_events.envelope import Actor
from modelyard_events.store.ports import EventStore
from modelyard_job.app.commands import JobCommands
from modelyard_job.app.trainers import TrainerFleet
from modelyard_job.domain import (
    ActiveLease,
    JobState,
    TrainerCapacity,
    expired_leases,
    lost_trainers,
    plan_dispatches,
)
from modelyard_job.liveness import Heartbeat, Liveness
from modelyard_job.projections.queries import JobViewReader
from modelyard_job.projections.rows import JobRow

log = logging.getLogger(__name__)
SCHEDULER = Caller(Actor(subject="job-svc/dispatcher", roles=("system",)))
_LOCK_KEY = 0x6A6F6273  # "jobs": one dispatcher pass at a time per database


@dataclass(frozen=True)
class PassResult:
    """What one pass did."""

    dispatched: int = 0
    expired: int = 0
    lost: int = 0


@dataclass(frozen=True)
class DispatcherParts:
    """What the dispatcher reads and acts through."""

    engine: AsyncEngine
    store: EventStore
    reader: JobViewReader
    views_name: str
    liveness: Liveness
    fleet: TrainerFleet
    commands: JobCommands


class Dispatcher:
    """Runs passes when woken or every `sweep_every_s`."""

    def __init__(
        self,
        parts: DispatcherParts,
        lease_ttl: timedelta,
        clock: Callable[[], datetime],
        sweep_every_s: float,
    ) -> None:
        self._parts, self._ttl, self._clock, self._sweep_every_s = parts, lease_ttl, clock, sweep_every_s
        self.wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop`; errors are logged and the next pass tries again."""
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.run_pass()
            except Exception:
                log.exception("dispatcher pass failed")
            waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=self._sweep_every_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    async def run_pass(self) -> PassResult:
        """One pass, if no other replica is in one (else nothing)."""
        p = self._parts
        async with p.engine.connect() as lock_conn, lock_conn.begin():
            held = (
                await lock_conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            ).scalar()
            if not held or not await self._views_caught_up():
                return PassResult()
            now = self._clock()
            heartbeats = await p.liveness.heartbeats()
            async with p.engine.connect() as conn:
                running = await p.reader.running(conn)
                lost_already = await _lost_trainers(conn, p.reader.schema)
            expired = await self._expire(running, now)
            lost = await self._mark_lost(heartbeats, lost_already, now)
            still_running = [r for r in running if r.dispatch_id not in expired]
            dispatched = await self._dispatch(still_running, heartbeats, now)
        return PassResult(dispatched, len(expired), lost)

    async def _views_caught_up(self, timeout_s: float = 2.0) -> bool:
        p = self._parts
        head = await p.store.head_position()
        deadline = time.monotonic() + timeout_s
        while True:
            async with p.engine.connect() as conn:
                applied = await read_checkpoint(conn, p.reader.schema, p.views_name, "job")
            if applied >= head:
                return True
            if time.monotonic() > deadline:
                log.info("dispatcher: views at %d, log at %d; skipping this pass", applied, head)
                return False
            await asyncio.sleep(0.005)  # the views apply within milliseconds; bounded by the deadline

    async def _expire(self, running: list[JobRow], now: datetime) -> set[str]:
        leases = [
            ActiveLease(r.job_id, r.dispatch_id, r.trainer_id, r.lease_expires_at)
            for r in running
            if r.dispatch_id and r.trainer_id and r.lease_expires_at
        ]
        renewals = await self._parts.liveness.renewals([lease.dispatch_id for lease in leases])
        expired = expired_leases(leases, renewals, self._ttl, now)
        for lease in expired:
            log.info("lease %s of job %s on %s expired", lease.dispatch_id, lease.job_id, lease.trainer_id)
            job = await self._parts.commands.expire_lease(lease.job_id, lease.dispatch_id, SCHEDULER)
            if job.state is JobState.FAILED:
                log.warning("job %s failed: %d dispatches lost", job.job_id, len(job.lost_dispatches))
        return {lease.dispatch_id for lease in expired}

    async def _mark_lost(
        self, heartbeats: dict[str, Heartbeat], lost_already: set[str], now: datetime
    ) -> int:
        silent = lost_trainers({t: h.at for t, h in heartbeats.items()}, self._ttl, now, lost_already)
        for trainer_id in silent:
            await self._parts.fleet.mark_lost(trainer_id, heartbeats[trainer_id].at)
        return len(silent)

    async def _dispatch(self, running: list[JobRow], heartbeats: dict[str, Heartbeat], now: datetime) -> int:
        load = Counter(r.trainer_id for r in running)
        capacities = [
            TrainerCapacity(t, max(h.slots_total - load[t], 0))
            for t, h in heartbeats.items()
            if h.at + self._ttl > now
        ]
        async with self._parts.engine.connect() as conn:
            queued = await self._parts.reader.queue(conn)
        entries = [r.queue_entry() for r in queued]
        plan = plan_dispatches(entries, capacities, Counter(r.org_id for r in running))
        dispatched = 0
        for job_id, trainer_id in plan:
            with contextlib.suppress(IllegalTransition):  # the job moved on (paused, cancelled) meanwhile
                await self._parts.commands.dispatch(job_id, trainer_id, self._ttl, SCHEDULER)
                dispatched += 1
        return dispatched


async def _lost_trainers(conn: AsyncConnection, schema: str) -> set[str]:
    rows = await conn.execute(text(f"SELECT trainer_id FROM {schema}.trainers WHERE lost"))
    return {r.trainer_id for r in rows}
