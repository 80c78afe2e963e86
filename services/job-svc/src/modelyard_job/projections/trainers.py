"""Trainer registrations and losses → the `trainers` table (liveness itself is in job-svc's live table)."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard_events.envelope import DomainEvent, EventEnvelope
from modelyard_events.schemas.jobs import TrainerLost, TrainerRegistered


async def apply_trainer_event(
    schema: str, event: DomainEvent, envelope: EventEnvelope, conn: AsyncConnection
) -> bool:
    """Fold a TrainerRegistered / TrainerLost; return whether the event was one of them."""
    if isinstance(event, TrainerRegistered):
        await conn.execute(
            text(
                f"INSERT INTO {schema}.trainers VALUES (:id, :slots, CAST(:gpus AS jsonb), :at, false, NULL) "
                "ON CONFLICT (trainer_id) DO UPDATE SET slots_total = :slots, gpus = CAST(:gpus AS jsonb), "
                "registered_at = :at, lost = false, lost_at = NULL"
            ),
            {
                "id": event.trainer_id,
                "slots": event.slots_total,
                "gpus": json.dumps(event.gpus),
                "at": envelope.occurred_at,
            },
        )
        return True
    if isinstance(event, TrainerLost):
        await conn.execute(
            text(f"UPDATE {schema}.trainers SET lost = true, lost_at = :at WHERE trainer_id = :id"),
            {"id": event.trainer_id, "at": envelope.occurred_at},
        )
        return True
    return False
