"""DeployViewReader: the app's read port (DeployReads) and the API's queries over the views.

Every read sees only what the views applied; `caught_up` says whether that is all of deploy-svc's
own log, for the conductor to decide on complete facts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard_deploy.app.ports import DeploymentLine, KnownVersion, ServerFacts
from modelyard_deploy.domain.edge_server import EdgeFacts
from modelyard_deploy.projections.fleet import complete_servers, drift_condition
from modelyard_deploy.projections.rows import (
    DeploymentRow,
    Page,
    RolloutRow,
    ServerRow,
    WaveRow,
    page_window,
    paged,
)
from modelyard_deploy.projections.views import DEPLOY_SOURCE, DeployViews
from modelyard_events.consumer.checkpoints import read_checkpoint
from modelyard_events.db import checked_schema
from modelyard_events.store.ports import EventSource

HISTORY_LENGTH = 50
_OPEN = (
    "({p}status IN ('pending', 'downloading', 'installing') "
    "OR ({p}status = 'failed' AND {p}retry_at IS NOT NULL))"
)


# The mobile status lists an organization's fleet in one answer: about 100 bytes a server, so this
# many stay far below gRPC's message limit; beyond them the answer says how many it left out.
MOBILE_MAX_EDGES = 10_000


class DeployViewReader:
    """Queries over DeployViews' and KnownVersions' tables (schema `views`) and the heartbeats (`live`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        views_schema: str,
        live_schema: str,
        log: EventSource,
        clock: Callable[[], datetime],
        online_within_s: float,
    ) -> None:
        self.engine, self._s, self._live = engine, checked_schema(views_schema), checked_schema(live_schema)
        self._log, self._clock, self._online_within_s = log, clock, online_within_s

    # ---- DeployReads (app/ports.py) ----

    async def version(self, version_id: str) -> KnownVersion | None:
        """The registry's version, or None when no registry event named it yet."""
        sql = f"SELECT * FROM {self._s}.known_versions WHERE version_id = :v"
        row = await self._one(sql, {"v": version_id})
        if row is None:
            return None
        return KnownVersion(
            version_id=row["version_id"],
            org_id=row["org_id"],
            ai_module=row["ai_module"],
            semantic_version=row["semantic_version"],
            status=row["status"],
            environments=tuple(row["environments"]),
            released_to=tuple(row["released_to"]),
            artifact_sha256=row["artifact_sha256"],
            artifact_size_bytes=int(row["artifact_size_bytes"]),
            min_edge_version=row["min_edge_version"],
            supported_platforms=tuple(row["supported_platforms"]),
        )

    async def server(self, org_id: str, server_id: str) -> ServerFacts | None:
        """One registered edge server of `org_id`."""
        where = "e.org_id = :org AND e.server_id = :server"
        found = await self._facts(where, {"org": org_id, "server": server_id})
        return found[0] if found else None

    async def servers_in_environment(self, org_id: str, environment: str) -> list[ServerFacts]:
        """Every registered server of the organization in `environment`, ordered by server id."""
        where = "e.org_id = :org AND e.environment = :env"
        return await self._facts(where, {"org": org_id, "env": environment})

    async def servers_serving(self, org_id: str, ai_module: str, version_id: str) -> list[ServerFacts]:
        """Servers that run `version_id` for `ai_module` or have an unfinished deployment of it."""
        where = f"""e.org_id = :org AND (EXISTS (SELECT 1 FROM {self._s}.edge_running r
            WHERE r.org_id = e.org_id AND r.server_id = e.server_id AND r.ai_module = :module
            AND r.version_id = :v)
            OR EXISTS (SELECT 1 FROM {self._s}.deployments d WHERE d.org_id = e.org_id
            AND d.server_id = e.server_id AND d.version_id = :v AND {_OPEN.format(p="d.")}))"""
        return await self._facts(where, {"org": org_id, "module": ai_module, "v": version_id})

    async def open_deployments(self) -> list[DeploymentLine]:
        """Deployments that are pending, downloading, installing, or failed with a retry_at."""
        sql = f"SELECT * FROM {self._s}.deployments WHERE {_OPEN.format(p='')} ORDER BY position"
        return [_line(r) for r in await self._all(sql, {})]

    async def rollout_deployments(self, rollout_id: str) -> list[DeploymentLine]:
        """Every deployment a rollout created (its waves and its rollback), oldest first."""
        sql = f"SELECT * FROM {self._s}.deployments WHERE rollout_id = :r ORDER BY position"
        return [_line(r) for r in await self._all(sql, {"r": rollout_id})]

    async def unfinished_rollout_ids(self) -> list[str]:
        """Rollouts that have not finished (scheduled, running, rolling back), oldest first."""
        sql = f"SELECT rollout_id FROM {self._s}.rollouts WHERE finished_at IS NULL ORDER BY position"
        return [str(r["rollout_id"]) for r in await self._all(sql, {})]

    async def caught_up(self, wait_s: float = 0.0) -> bool:
        """True once the views have applied every event deploy-svc's log held when asked (waiting up to
        `wait_s`; events appended meanwhile are not waited for)."""
        head = await self._log.head_position()
        deadline = time.monotonic() + wait_s
        while True:
            async with self.engine.connect() as conn:
                applied = await read_checkpoint(conn, self._s, DeployViews.name, DEPLOY_SOURCE)
            if applied >= head or time.monotonic() > deadline:
                return applied >= head
            await asyncio.sleep(0.005)  # the views apply within milliseconds; bounded by the deadline

    # ---- the API's queries ----

    async def deployment(self, deployment_id: str) -> DeploymentRow | None:
        """One deployment, or None."""
        sql = f"SELECT * FROM {self._s}.deployments WHERE deployment_id = :d"
        row = await self._one(sql, {"d": deployment_id})
        return None if row is None else DeploymentRow.from_mapping(row)

    async def deployments_page(
        self,
        *,
        org_id: str = "",
        version_id: str = "",
        server_id: str = "",
        rollout_id: str = "",
        statuses: Sequence[str] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[DeploymentRow]:
        """Deployments newest first, filtered by each argument that is set."""
        size, offset = page_window(page_size, page_token)
        where, params = _filters(
            {"org_id": org_id, "version_id": version_id, "server_id": server_id, "rollout_id": rollout_id}
        )
        if statuses:
            where.append("status = ANY(:statuses)")
            params["statuses"] = list(statuses)
        sql = (
            f"SELECT * FROM {self._s}.deployments WHERE {' AND '.join(where)} "
            "ORDER BY position DESC LIMIT :limit OFFSET :offset"
        )
        rows = await self._all(sql, {**params, "limit": size + 1, "offset": offset})
        return paged([DeploymentRow.from_mapping(r) for r in rows], size, offset)

    async def servers_page(
        self,
        *,
        org_id: str = "",
        environment: str = "",
        drift_only: bool = False,
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[ServerRow]:
        """Edge servers by organization and server id, with what they run and should run."""
        size, offset = page_window(page_size, page_token)
        where, params = _filters({"e.org_id": org_id, "e.environment": environment})
        if drift_only:
            where.append(drift_condition(self._s))
        sql = (
            f"SELECT e.* FROM {self._s}.edge_servers e WHERE {' AND '.join(where)} "
            "ORDER BY e.org_id, e.server_id LIMIT :limit OFFSET :offset"
        )
        async with self.engine.connect() as conn:
            window = {**params, "limit": size + 1, "offset": offset}
            found = (await conn.execute(text(sql), window)).mappings().all()
            rows = await self._complete(conn, found)
        return paged(rows, size, offset)

    async def server_detail(
        self, org_id: str, server_id: str
    ) -> tuple[ServerRow, list[DeploymentRow]] | None:
        """One server and its last HISTORY_LENGTH deployments, newest first; None when not registered."""
        async with self.engine.connect() as conn:
            found = await self._edge_servers(
                conn, "e.org_id = :org AND e.server_id = :server", {"org": org_id, "server": server_id}
            )
            if not found:
                return None
            server = (await self._complete(conn, found))[0]
            history = (
                await conn.execute(
                    text(
                        f"SELECT * FROM {self._s}.deployments WHERE org_id = :org AND server_id = :server "
                        "ORDER BY position DESC LIMIT :n"
                    ),
                    {"org": org_id, "server": server_id, "n": HISTORY_LENGTH},
                )
            ).mappings()
            return server, [DeploymentRow.from_mapping(r) for r in history]

    async def server_ids(self, org_id: str, limit: int = MOBILE_MAX_EDGES) -> list[str]:
        """An organization's registered servers' ids, in order, at most `limit`."""
        sql = f"SELECT server_id FROM {self._s}.edge_servers WHERE org_id = :org ORDER BY server_id LIMIT :n"
        return [str(r["server_id"]) for r in await self._all(sql, {"org": org_id, "n": limit})]

    async def fleet(self, org_id: str, limit: int = MOBILE_MAX_EDGES) -> tuple[list[ServerRow], int]:
        """An organization's servers by id, at most `limit` (the mobile status lists the whole fleet in
        one answer), and how many more there are."""
        async with self.engine.connect() as conn:
            found = await self._edge_servers(
                conn, "e.org_id = :org ORDER BY e.server_id LIMIT :limit", {"org": org_id, "limit": limit + 1}
            )
            left_out = 0
            if len(found) > limit:
                found = found[:limit]
                total = await conn.scalar(
                    text(f"SELECT count(*) FROM {self._s}.edge_servers WHERE org_id = :org"), {"org": org_id}
                )
                left_out = int(total or 0) - limit
            return await self._complete(conn, found), left_out

    async def rollout(self, rollout_id: str) -> RolloutRow | None:
        """One rollout with each wave's progress counted from its deployments."""
        async with self.engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        text(f"SELECT * FROM {self._s}.rollouts WHERE rollout_id = :r"), {"r": rollout_id}
                    )
                )
                .mappings()
                .first()
            )
            return None if row is None else RolloutRow.from_mapping(row, await self._waves(conn, row))

    async def rollouts_page(
        self, *, org_id: str = "", version_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[RolloutRow]:
        """Rollouts newest first."""
        size, offset = page_window(page_size, page_token)
        where, params = _filters({"org_id": org_id, "version_id": version_id})
        sql = (
            f"SELECT * FROM {self._s}.rollouts WHERE {' AND '.join(where)} "
            "ORDER BY position DESC LIMIT :limit OFFSET :offset"
        )
        async with self.engine.connect() as conn:
            window = {**params, "limit": size + 1, "offset": offset}
            found = (await conn.execute(text(sql), window)).mappings().all()
            rows = [RolloutRow.from_mapping(r, await self._waves(conn, r)) for r in found]
        return paged(rows, size, offset)

    async def assignments(
        self, org_id: str, server_id: str, now: datetime
    ) -> tuple[list[DeploymentRow], datetime | None]:
        """(deployments the server should carry out now, oldest first; the next future scheduled_at).

        Due: pending with scheduled_at <= now, or downloading/installing (an agent restarting
        mid-download resumes it).
        """
        params = {"org": org_id, "server": server_id, "now": now}
        due = await self._all(
            f"""SELECT * FROM {self._s}.deployments WHERE org_id = :org AND server_id = :server
            AND ((status = 'pending' AND scheduled_at <= :now) OR status IN ('downloading', 'installing'))
            ORDER BY position""",
            params,
        )
        later = await self._one(
            f"""SELECT min(scheduled_at) AS at FROM {self._s}.deployments WHERE org_id = :org
            AND server_id = :server AND status = 'pending' AND scheduled_at > :now""",
            params,
        )
        return [DeploymentRow.from_mapping(r) for r in due], (later or {}).get("at")

    async def edge_facts(self, org_id: str, server_id: str) -> tuple[EdgeFacts, dict[str, str]] | None:
        """The server's registered facts and what it serves (module → version id); None when the views
        do not show it (never registered, or registered a moment ago). One query."""
        rows = await self._all(
            f"""SELECT e.environment, e.platform, e.edge_version, e.hostname, r.ai_module, r.version_id
            FROM {self._s}.edge_servers e LEFT JOIN {self._s}.edge_running r
            ON r.org_id = e.org_id AND r.server_id = e.server_id
            WHERE e.org_id = :org AND e.server_id = :server""",
            {"org": org_id, "server": server_id},
        )
        if not rows:
            return None
        first = rows[0]
        facts = EdgeFacts(
            server_id, first["environment"], first["platform"], first["edge_version"], first["hostname"]
        )
        return facts, {str(r["ai_module"]): str(r["version_id"]) for r in rows if r["ai_module"] is not None}

    async def cancelled_among(self, org_id: str, server_id: str, deployment_ids: Sequence[str]) -> list[str]:
        """Which of `deployment_ids` (of this server) are cancelled."""
        if not deployment_ids:
            return []
        rows = await self._all(
            f"""SELECT deployment_id FROM {self._s}.deployments WHERE deployment_id = ANY(:ids)
            AND org_id = :org AND server_id = :server AND status = 'cancelled'""",
            {"ids": list(deployment_ids), "org": org_id, "server": server_id},
        )
        return [str(r["deployment_id"]) for r in rows]

    # ---- helpers ----

    async def _edge_servers(
        self, conn: AsyncConnection, condition: str, params: dict[str, Any]
    ) -> list[RowMapping]:
        sql = f"SELECT e.* FROM {self._s}.edge_servers e WHERE {condition}"
        return list((await conn.execute(text(sql), params)).mappings().all())

    async def _facts(self, where: str, params: dict[str, Any]) -> list[ServerFacts]:
        async with self.engine.connect() as conn:
            found = (
                (
                    await conn.execute(
                        text(f"SELECT e.* FROM {self._s}.edge_servers e WHERE {where} ORDER BY e.server_id"),
                        params,
                    )
                )
                .mappings()
                .all()
            )
            rows = await self._complete(conn, found)
        return [
            ServerFacts(
                server_id=r.server_id,
                org_id=r.org_id,
                environment=r.environment,
                platform=r.platform,
                edge_version=r.edge_version,
                running={m.ai_module: m.version_id for m in r.running},
                last_heartbeat_at=r.last_heartbeat_at,
            )
            for r in rows
        ]

    async def _complete(self, conn: AsyncConnection, found: Sequence[Mapping[Any, Any]]) -> list[ServerRow]:
        return await complete_servers(conn, self._s, self._live, found, self._clock(), self._online_within_s)

    async def _waves(self, conn: AsyncConnection, rollout: Mapping[Any, Any]) -> list[WaveRow]:
        counts = (
            await conn.execute(
                text(
                    f"""SELECT wave, count(*) FILTER (WHERE status = 'completed') AS completed,
                    count(*) FILTER (WHERE status = 'failed' AND retry_at IS NULL) AS failed,
                    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                    count(*) FILTER (WHERE status NOT IN ('completed', 'cancelled')
                                     AND NOT (status = 'failed' AND retry_at IS NULL)) AS in_progress
                    FROM {self._s}.deployments WHERE rollout_id = :r AND kind = :kind GROUP BY wave"""
                ),
                {"r": rollout["rollout_id"], "kind": rollout["kind"]},
            )
        ).mappings()
        by_wave: dict[int, Mapping[Any, Any]] = {r["wave"]: r for r in counts}
        marks = (
            await conn.execute(
                text(f"SELECT * FROM {self._s}.rollout_waves WHERE rollout_id = :r"),
                {"r": rollout["rollout_id"]},
            )
        ).mappings()
        by_mark = {r["wave"]: r for r in marks}
        waves = []
        for wave, size in enumerate(rollout["wave_sizes"]):
            c: Mapping[Any, Any] = by_wave.get(wave, {})
            m = by_mark.get(wave)
            waves.append(
                WaveRow(
                    wave=wave,
                    size=int(size),
                    completed=int(c.get("completed", 0)),
                    failed=int(c.get("failed", 0)),
                    cancelled=int(c.get("cancelled", 0)),
                    in_progress=int(c.get("in_progress", 0)),
                    started=m is not None and m["started_at"] is not None,
                    finished=bool(m and m["finished"]),
                    passed=bool(m and m["passed"]),
                )
            )
        return waves

    async def _one(self, sql: str, params: dict[str, Any]) -> Mapping[Any, Any] | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).mappings().first()

    async def _all(self, sql: str, params: dict[str, Any]) -> Sequence[Mapping[Any, Any]]:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).mappings().all()


def _filters(values: Mapping[str, str]) -> tuple[list[str], dict[str, Any]]:
    where, params = ["true"], {}
    for i, (column, value) in enumerate(values.items()):
        if value:
            where.append(f"{column} = :f{i}")
            params[f"f{i}"] = value
    return where, params


def _line(row: Mapping[Any, Any]) -> DeploymentLine:
    return DeploymentLine(
        deployment_id=row["deployment_id"],
        org_id=row["org_id"],
        server_id=row["server_id"],
        version_id=row["version_id"],
        ai_module=row["ai_module"],
        status=row["status"],
        attempt=int(row["attempt"]),
        retry_at=row["retry_at"],
        deadline_at=row["deadline_at"],
        scheduled_at=row["scheduled_at"],
        rollout_id=row["rollout_id"],
        wave=row["wave"],
        kind=row["kind"],
        previous_version_id=row["previous_version_id"],
        updated_at=row["updated_at"],
    )
