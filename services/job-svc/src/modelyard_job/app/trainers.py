"""Trainer heartbeats and losses: liveness rows always, events only when the fleet changes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from modelyard_events.envelope import Actor, CommandContext, DomainEvent
from modelyard_events.errors import ConcurrencyConflict
from modelyard_events.schemas.jobs import JOB_EVENTS, TRAINER_STREAM, TrainerLost, TrainerRegistered
from modelyard_events.store.ports import EventStore
from modelyard_job.liveness import Heartbeat, Liveness


def trainer_stream_id(trainer_id: str) -> str:
    """The stream of a trainer's registrations and losses."""
    return f"trainer/{trainer_id}"


class TrainerFleet:
    """Records heartbeats, registers trainers that appear or change, marks silent ones lost."""

    def __init__(
        self, store: EventStore, liveness: Liveness, lease_ttl: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self._store, self._liveness, self._ttl, self._clock = store, liveness, lease_ttl, clock

    async def heartbeat(
        self, trainer_id: str, slots_total: int, gpus: list[str], dispatch_ids: list[str]
    ) -> None:
        """Store the heartbeat, renew the named dispatches; TrainerRegistered when new, back or changed."""
        beat = Heartbeat(trainer_id, slots_total, list(gpus), self._clock())
        previous = await self._liveness.record(beat, dispatch_ids)
        changed = previous is None or (previous.slots_total, previous.gpus) != (slots_total, beat.gpus)
        if not changed and previous is not None and previous.at + self._ttl > beat.at:
            return
        registered = TrainerRegistered(trainer_id=trainer_id, slots_total=slots_total, gpus=beat.gpus)
        await self._append_unless(trainer_id, registered, lambda last: last == registered)

    async def mark_lost(self, trainer_id: str, last_heartbeat_at: datetime) -> None:
        """TrainerLost, once per silence."""
        lost = TrainerLost(trainer_id=trainer_id, last_heartbeat_at=last_heartbeat_at)
        await self._append_unless(trainer_id, lost, lambda last: isinstance(last, TrainerLost))

    async def _append_unless(
        self, trainer_id: str, event: DomainEvent, already: Callable[[DomainEvent | None], bool]
    ) -> None:
        stream_id = trainer_stream_id(trainer_id)
        stored = await self._store.read_stream(stream_id)
        last = JOB_EVENTS.decode(stored[-1]) if stored else None
        if already(last):
            return
        context = CommandContext(actor=Actor(subject=trainer_id, roles=("trainer",)))
        # A conflict means another replica recorded the same change of this trainer first.
        with contextlib.suppress(ConcurrencyConflict):
            await self._store.append(TRAINER_STREAM, stream_id, len(stored), [event], context)
