"""Reads of the fleet: servers with what they run, what they should run, and their liveness.

"Intended" per module is the version of the server's newest deployment of that module that was
not cancelled (a failed one still says what the server should run: that is drift to look at).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_deploy.projections.rows import DeploymentRow, ModelOnServer, ServerRow

ServerKey = tuple[str, str]  # (org_id, server_id)

_INTENDED = """SELECT DISTINCT ON (d.org_id, d.server_id, d.ai_module) d.org_id, d.server_id, d.ai_module,
    d.version_id, d.semantic_version FROM {s}.deployments d
    WHERE d.status <> 'cancelled' AND {where}
    ORDER BY d.org_id, d.server_id, d.ai_module, d.position DESC"""

DRIFT_CONDITION = """EXISTS (SELECT 1 FROM ({intended}) i LEFT JOIN {s}.edge_running r
    ON r.org_id = i.org_id AND r.server_id = i.server_id AND r.ai_module = i.ai_module
    WHERE r.version_id IS DISTINCT FROM i.version_id)"""


def drift_condition(s: str) -> str:
    """SQL true for the server aliased `e` when some module runs another version than intended."""
    intended = _INTENDED.format(s=s, where="d.org_id = e.org_id AND d.server_id = e.server_id")
    return DRIFT_CONDITION.format(intended=intended, s=s)


async def complete_servers(
    conn: AsyncConnection,
    s: str,
    live: str,
    servers: Sequence[Mapping[Any, Any]],
    now: datetime,
    online_within_s: float,
) -> list[ServerRow]:
    """ServerRows for `edge_servers` rows: running, intended, heartbeat and active deployment added."""
    if not servers:
        return []
    keys = {"orgs": [r["org_id"] for r in servers], "ids": [r["server_id"] for r in servers]}
    in_page = "(x.org_id, x.server_id) IN (SELECT * FROM unnest(CAST(:orgs AS text[]), CAST(:ids AS text[])))"
    running = await _models(
        conn,
        f"""SELECT x.org_id, x.server_id, x.ai_module, x.version_id, COALESCE(k.semantic_version, '')
        FROM {s}.edge_running x LEFT JOIN {s}.known_versions k ON k.version_id = x.version_id
        WHERE {in_page} ORDER BY x.ai_module""",
        keys,
    )
    intended_sql = _INTENDED.format(s=s, where=in_page.replace("x.", "d."))
    intended = await _models(conn, f"SELECT * FROM ({intended_sql}) x ORDER BY x.ai_module", keys)
    beats = {
        (r["org_id"], r["server_id"]): r
        for r in (
            await conn.execute(text(f"SELECT * FROM {live}.edge_heartbeats x WHERE {in_page}"), keys)
        ).mappings()
    }
    active = await _active_deployments(conn, s, in_page, keys)
    rows = []
    for server in servers:
        key = (server["org_id"], server["server_id"])
        beat = beats.get(key)
        last_at = beat["last_at"] if beat else None
        rows.append(
            ServerRow(
                **{k: server[k] for k in ServerRow.__dataclass_fields__ if k in server and k != "running"},
                running=running.get(key, []),
                intended=intended.get(key, []),
                last_heartbeat_at=last_at,
                free_disk_bytes=int(beat["free_disk_bytes"]) if beat else 0,
                online=last_at is not None and now - last_at <= timedelta(seconds=online_within_s),
                active_deployment=active.get(key),
            )
        )
    return rows


async def _models(
    conn: AsyncConnection, sql: str, params: dict[str, Any]
) -> dict[ServerKey, list[ModelOnServer]]:
    found: dict[ServerKey, list[ModelOnServer]] = defaultdict(list)
    for row in (await conn.execute(text(sql), params)).all():
        found[(str(row[0]), str(row[1]))].append(ModelOnServer(str(row[2]), str(row[3]), str(row[4])))
    return found


async def _active_deployments(
    conn: AsyncConnection, s: str, in_page: str, keys: dict[str, Any]
) -> dict[ServerKey, DeploymentRow]:
    """Per server: its newest deployment being installed, else its newest pending one."""
    rows = (
        await conn.execute(
            text(
                f"""SELECT DISTINCT ON (x.org_id, x.server_id) x.* FROM {s}.deployments x
                WHERE x.status IN ('pending', 'downloading', 'installing') AND {in_page}
                ORDER BY x.org_id, x.server_id, (x.status = 'pending'), x.position DESC"""
            ),
            keys,
        )
    ).mappings()
    return {(r["org_id"], r["server_id"]): DeploymentRow.from_mapping(r) for r in rows}
