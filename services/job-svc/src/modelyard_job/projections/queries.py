"""Reads over the job views: jobs, pages, the queue in dispatch order, metrics, timelines, trainers."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import EventEnvelope
from modelyard_events.wire import decode_envelope
from modelyard_job.domain import order_queue
from modelyard_job.domain.estimates import PastRun
from modelyard_job.liveness import Heartbeat
from modelyard_job.projections.rows import EpochRow, JobRow, TrainerRow

PageKey = tuple[datetime, str]


class JobViewReader:
    """Queries over one views schema; every method takes a connection (one snapshot per call site)."""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    async def job(self, conn: AsyncConnection, job_id: str) -> JobRow | None:
        """One job, with its queue position when queued."""
        rows = await self._jobs(conn, "WHERE job_id = :id", {"id": job_id})
        if not rows:
            return None
        if rows[0].state != "queued":
            return rows[0]
        positions = {row.job_id: i for i, row in enumerate(await self.queue(conn), start=1)}
        return replace(rows[0], queue_position=positions.get(job_id))

    async def page(
        self,
        conn: AsyncConnection,
        *,
        states: list[str],
        org_id: str,
        ai_module: str,
        size: int,
        after: PageKey | None,
    ) -> list[JobRow]:
        """Up to `size` jobs, newest first, after the page key (created_at, job_id) when given."""
        where: list[str] = ["TRUE"]
        params: dict[str, object] = {"size": size}
        if states:
            where.append("state = ANY(:states)")
            params["states"] = states
        if org_id:
            where.append("org_id = :org")
            params["org"] = org_id
        if ai_module:
            where.append("ai_module = :module")
            params["module"] = ai_module
        if after is not None:
            where.append("(created_at, job_id) < (:after_at, :after_id)")
            params.update(after_at=after[0], after_id=after[1])
        clause = "WHERE " + " AND ".join(where) + " ORDER BY created_at DESC, job_id DESC LIMIT :size"
        return await self._jobs(conn, clause, params)

    async def queue(self, conn: AsyncConnection, org_id: str = "") -> list[JobRow]:
        """Queued jobs in dispatch order (positions are over every organization's queue)."""
        queued = await self._jobs(conn, "WHERE state = 'queued'", {})
        running = await self.running_by_org(conn)
        entries = [r.queue_entry() for r in queued]
        by_id = {r.job_id: r for r in queued}
        ordered = [
            replace(by_id[e.job_id], queue_position=i) for i, e in enumerate(order_queue(entries, running), 1)
        ]
        return [r for r in ordered if not org_id or r.org_id == org_id]

    async def running(self, conn: AsyncConnection, org_id: str = "") -> list[JobRow]:
        """Running jobs (dispatched ones included), oldest update first."""
        clause = "WHERE state = 'running'" + (" AND org_id = :org" if org_id else "") + " ORDER BY updated_at"
        return await self._jobs(conn, clause, {"org": org_id})

    async def running_by_org(self, conn: AsyncConnection) -> Counter[str]:
        """How many jobs each organization has running."""
        sql = text(
            f"SELECT org_id, count(*) AS n FROM {self.schema}.jobs WHERE state = 'running' GROUP BY org_id"
        )
        return Counter({r.org_id: int(r.n) for r in (await conn.execute(sql)).all()})

    async def epochs(self, conn: AsyncConnection, job_id: str) -> list[EpochRow]:
        """Every measured epoch of every attempt of a job, in order."""
        sql = text(f"SELECT * FROM {self.schema}.epoch_metrics WHERE job_id = :id ORDER BY attempt, epoch")
        return [EpochRow(**row) for row in (await conn.execute(sql, {"id": job_id})).mappings()]

    async def epoch(self, conn: AsyncConnection, job_id: str, attempt: int, epoch: int) -> EpochRow | None:
        """One epoch's metrics, or None."""
        sql = text(
            f"SELECT * FROM {self.schema}.epoch_metrics WHERE job_id = :id AND attempt = :a AND epoch = :e"
        )
        row = (await conn.execute(sql, {"id": job_id, "a": attempt, "e": epoch})).mappings().first()
        return EpochRow(**row) if row else None

    async def last_epochs(self, conn: AsyncConnection, rows: list[JobRow]) -> dict[str, EpochRow]:
        """Each job's last completed epoch of its current attempt (one query for all the rows)."""
        done = [row for row in rows if row.epochs_done > 0]
        if not done:
            return {}
        sql = text(
            f"SELECT e.* FROM {self.schema}.epoch_metrics AS e JOIN unnest(CAST(:ids AS text[]), "
            "CAST(:attempts AS int[]), CAST(:epochs AS int[])) AS k(job_id, attempt, epoch) "
            "USING (job_id, attempt, epoch)"
        )
        keys = {
            "ids": [row.job_id for row in done],
            "attempts": [row.attempt for row in done],
            "epochs": [row.epochs_done for row in done],
        }
        return {row["job_id"]: EpochRow(**row) for row in (await conn.execute(sql, keys)).mappings()}

    async def past_runs(
        self, conn: AsyncConnection, org_id: str, ai_module: str, family: str, limit: int = 20
    ) -> list[PastRun]:
        """The organization's last `limit` completed training runs of a module and family, measured
        from their final attempt's epochs (evaluations and runs without epochs left out)."""
        sql = text(
            f"SELECT j.job_id, j.device, j.train_samples, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY e.duration_s) AS epoch_s, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY e.samples_per_s) AS samples_per_s, "
            "GREATEST(extract(epoch FROM j.completed_at - j.started_at) - sum(e.duration_s), 0) "
            "AS outside_epochs_s "
            f"FROM {self.schema}.jobs AS j JOIN {self.schema}.epoch_metrics AS e "
            "ON e.job_id = j.job_id AND e.attempt = j.attempt "
            "WHERE j.org_id = :org AND j.ai_module = :module AND j.family = :family AND j.kind = 'training' "
            "AND j.state = 'completed' AND j.device IS NOT NULL AND j.train_samples > 0 "
            "AND j.started_at IS NOT NULL AND j.completed_at IS NOT NULL "
            "GROUP BY j.job_id ORDER BY j.completed_at DESC LIMIT :limit"
        )
        params = {"org": org_id, "module": ai_module, "family": family, "limit": limit}
        return [
            PastRun(
                device=r.device,
                train_samples=int(r.train_samples),
                epoch_s=float(r.epoch_s),
                samples_per_s=float(r.samples_per_s),
                outside_epochs_s=float(r.outside_epochs_s),
            )
            for r in (await conn.execute(sql, params)).all()
        ]

    async def timeline(self, conn: AsyncConnection, job_id: str) -> list[EventEnvelope]:
        """The job's events from both logs, in the order they happened."""
        sql = text(
            f"SELECT envelope FROM {self.schema}.job_timeline WHERE job_id = :id "
            "ORDER BY occurred_at, source, position"
        )
        return [decode_envelope(r.envelope.encode()) for r in (await conn.execute(sql, {"id": job_id})).all()]

    async def _jobs(self, conn: AsyncConnection, clause: str, params: dict[str, object]) -> list[JobRow]:
        sql = text(f"SELECT * FROM {self.schema}.jobs {clause}")
        return [JobRow(**row) for row in (await conn.execute(sql, params)).mappings()]


async def trainer_rows(
    conn: AsyncConnection, schema: str, heartbeats: dict[str, Heartbeat], alive_after: datetime
) -> list[TrainerRow]:
    """Every trainer heard from or registered, with its running jobs (alive: beat after `alive_after`)."""
    registered = {
        r.trainer_id: r for r in (await conn.execute(text(f"SELECT * FROM {schema}.trainers"))).all()
    }
    running = await conn.execute(
        text(f"SELECT trainer_id, job_id FROM {schema}.jobs WHERE state = 'running' ORDER BY job_id")
    )
    jobs: dict[str, list[str]] = {}
    for row in running:
        jobs.setdefault(row.trainer_id, []).append(row.job_id)
    rows = []
    for trainer_id in sorted(registered.keys() | heartbeats.keys()):
        beat, known = heartbeats.get(trainer_id), registered.get(trainer_id)
        slots = beat.slots_total if beat else known.slots_total if known else 0
        gpus = beat.gpus if beat else list(known.gpus) if known else []
        alive = beat is not None and beat.at > alive_after
        rows.append(
            TrainerRow(trainer_id, slots, gpus, alive, beat.at if beat else None, jobs.get(trainer_id, []))
        )
    return rows
