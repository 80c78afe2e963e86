"""The rollout part of DeployViews: one row per rollout, its targets with their wave, its waves.

Per-wave counts (completed, failed, in progress) are not stored: they are counted from the
deployments when read (queries.py), so they can never disagree with the deployments' rows.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_deploy.projections.tables import rollout_key
from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.deploy import (
    RolloutCancelled,
    RolloutFinished,
    RolloutHalted,
    RolloutRollbackRequested,
    RolloutStarted,
    RolloutTargetsAdded,
    RolloutWaveFinished,
    RolloutWaveStarted,
)

_STATE_OF_OUTCOME = {
    "completed": "completed",
    "halted": "halted",
    "rolled_back": "rolled_back",
    "cancelled": "cancelled",
}


async def apply_rollout_event(
    s: str, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
) -> list[tuple[str, str]]:
    """Fold a rollout event (others are ignored); the notices to send."""
    if isinstance(event, RolloutStarted):
        await _start(s, event, envelope, conn)
    elif isinstance(event, RolloutTargetsAdded):
        await _add_targets(s, event, conn)
    elif isinstance(event, RolloutWaveStarted):
        await conn.execute(
            text(
                f"""INSERT INTO {s}.rollout_waves VALUES (:r, :w, :at, false, false)
                ON CONFLICT (rollout_id, wave) DO UPDATE SET started_at = :at"""
            ),
            {"r": event.rollout_id, "w": event.wave, "at": event.started_at},
        )
        running = "state = 'running', current_wave = :w"
        await _update(s, event.rollout_id, running, {"w": event.wave}, envelope, conn)
    elif isinstance(event, RolloutWaveFinished):
        await conn.execute(
            text(
                f"""INSERT INTO {s}.rollout_waves VALUES (:r, :w, NULL, true, :passed)
                ON CONFLICT (rollout_id, wave) DO UPDATE SET finished = true, passed = :passed"""
            ),
            {"r": event.rollout_id, "w": event.wave, "passed": event.passed},
        )
        await _update(s, event.rollout_id, "", {}, envelope, conn)
    elif isinstance(event, RolloutHalted):
        state = "rolling_back" if event.rolling_back else "halted"
        params = {"state": state, "why": event.reason}
        await _update(s, event.rollout_id, "state = :state, halt_reason = :why", params, envelope, conn)
    elif isinstance(event, RolloutRollbackRequested):
        why = {"why": event.reason}
        # A finished rollout asked to roll back is unfinished again until its rollback ends.
        state = "state = 'rolling_back', finished_at = NULL, halt_reason = :why"
        await _update(s, event.rollout_id, state, why, envelope, conn)
    elif isinstance(event, RolloutCancelled):
        why = {"why": event.reason}
        await _update(s, event.rollout_id, "state = 'cancelled', halt_reason = :why", why, envelope, conn)
    elif isinstance(event, RolloutFinished):
        outcome = {"state": _STATE_OF_OUTCOME[event.outcome], "why": event.reason}
        await _update(
            s,
            event.rollout_id,
            "state = :state, finished_at = :at, halt_reason = "
            "CASE WHEN halt_reason = '' AND :state <> 'completed' THEN :why ELSE halt_reason END",
            outcome,
            envelope,
            conn,
        )
    else:
        return []
    return [(rollout_key(event.rollout_id), "rollout")]


async def _start(s: str, event: RolloutStarted, envelope: EventEnvelope, conn: AsyncConnection) -> None:
    await conn.execute(
        text(
            f"""INSERT INTO {s}.rollouts VALUES (:id, :org, :version, :module, :semver, :env, 'scheduled',
            :kind, CAST(:sizes AS jsonb), :threshold, :rollback, :scheduled, :deadline, :retries, :backoff,
            CAST(:limits AS jsonb), :by, :reason, '', :count, 0, :of, :at, NULL, :at, :pos)
            ON CONFLICT (rollout_id) DO NOTHING"""
        ),
        {
            "id": event.rollout_id,
            "org": event.org_id,
            "version": event.version_id,
            "module": event.ai_module,
            "semver": event.semantic_version,
            "env": event.environment,
            "kind": event.kind,
            "sizes": json.dumps(event.wave_sizes),
            "threshold": event.failure_threshold,
            "rollback": event.rollback_on_failure,
            "scheduled": event.scheduled_at,
            "deadline": event.deadline_s,
            "retries": event.max_retries,
            "backoff": event.backoff_base_s,
            "limits": event.health.model_dump_json(),
            "by": event.started_by,
            "reason": event.reason,
            "count": event.server_count,
            "of": event.release_rollback_of,
            "at": envelope.occurred_at,
            "pos": envelope.position,
        },
    )


async def _add_targets(s: str, event: RolloutTargetsAdded, conn: AsyncConnection) -> None:
    sizes_json = (
        await conn.execute(
            text(f"SELECT wave_sizes FROM {s}.rollouts WHERE rollout_id = :r"), {"r": event.rollout_id}
        )
    ).scalar()
    ends = list(accumulate(list(sizes_json or [])))
    indexes = list(range(event.first_index, event.first_index + len(event.server_ids)))
    await conn.execute(
        text(
            f"""INSERT INTO {s}.rollout_targets SELECT :r, i, server, w
            FROM unnest(CAST(:indexes AS int[]), CAST(:servers AS text[]), CAST(:waves AS int[]))
            AS t(i, server, w)
            ON CONFLICT DO NOTHING"""
        ),
        {
            "r": event.rollout_id,
            "indexes": indexes,
            "servers": list(event.server_ids),
            "waves": [wave_of(i, ends) for i in indexes],
        },
    )


def wave_of(index: int, wave_ends: list[int]) -> int:
    """The wave of the target at `index`, given the cumulative wave sizes (the last wave takes the rest)."""
    for wave, end in enumerate(wave_ends):
        if index < end:
            return wave
    return max(len(wave_ends) - 1, 0)


async def _update(
    s: str,
    rollout_id: str,
    assignments: str,
    params: dict[str, Any],
    envelope: EventEnvelope,
    conn: AsyncConnection,
) -> None:
    set_clause = f"{assignments}, updated_at = :at" if assignments else "updated_at = :at"
    await conn.execute(
        text(f"UPDATE {s}.rollouts SET {set_clause} WHERE rollout_id = :r"),
        {**params, "r": rollout_id, "at": envelope.occurred_at},
    )
