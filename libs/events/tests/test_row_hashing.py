"""The store's row path (RowHasher over stored text, envelope_from_row) agrees with the envelope path
(envelope_hash over the parsed envelope): the fast hash is the same bytes as the canonical one."""

from __future__ import annotations

import json
from typing import Any

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import Actor, CommandContext, EventEnvelope
from modelyard_events.hashing import RowHasher, envelope_hash
from modelyard_events.store import InMemoryEventStore
from modelyard_events.store.postgres_rows import envelope_from_row
from modelyard_events.testing.sample_events import CounterIncremented, CounterOpened
from modelyard_events.testing.signing import TEST_SIGNER


def _row(envelope: EventEnvelope, *, spaced_actor: bool = False) -> tuple[Any, ...]:
    """The envelope as the events table returns it (COLUMNS order; jsonb prints its own spacing)."""
    actor = envelope.actor.model_dump(mode="json")
    actor_text = json.dumps(actor) if spaced_actor else canonical_json(actor)
    return (
        envelope.position, envelope.event_id, envelope.stream_type, envelope.stream_id,
        envelope.stream_version, envelope.type, envelope.schema_version, envelope.occurred_at,
        actor_text, envelope.org_id, envelope.correlation_id, envelope.causation_id,
        canonical_json(envelope.data), envelope.prev_hash, envelope.hash,
    )  # fmt: skip


async def _log() -> list[EventEnvelope]:
    store = InMemoryEventStore(signer=TEST_SIGNER)
    alice = CommandContext(actor=Actor(subject="alice", roles=("operator",)), org_id="org-1")
    bob = CommandContext(actor=Actor(subject="bob", roles=()), org_id=None, causation_id="c-1")
    await store.append(
        "counter", "c-1", 0, [CounterOpened(name="a"), CounterIncremented(amount=2, note="ünïcode")], alice
    )
    await store.append("counter", "c-2", 0, [CounterOpened(name='é "quoted"')], bob)
    await store.append("counter", "c-1", 2, [CounterIncremented(amount=3)], alice)
    return await store.read_all()


async def test_the_row_hash_equals_the_envelope_hash_across_appends_that_share_nothing() -> None:
    log = await _log()
    hasher = RowHasher()  # one hasher over the whole log: its cached shared fields must switch
    for envelope in log:
        assert envelope_hash(envelope) == envelope.hash
        assert hasher.hash(_row(envelope, spaced_actor=envelope.position % 2 == 0)) == envelope.hash


async def test_an_edited_payload_changes_the_row_hash() -> None:
    envelope = (await _log())[0]
    row = list(_row(envelope))
    row[12] = row[12].replace('"a"', '"b"')
    assert RowHasher().hash(tuple(row)) != envelope.hash


async def test_a_row_builds_the_envelope_it_was_stored_from() -> None:
    for envelope in await _log():
        assert envelope_from_row(_row(envelope)) == envelope
