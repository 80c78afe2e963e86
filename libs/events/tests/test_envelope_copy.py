"""Envelopes the store builds (without validation) copy like any pydantic model, with changes."""

from __future__ import annotations

from modelyard_events.envelope import Actor, CommandContext, DomainEvent
from modelyard_events.store.memory import InMemoryEventStore


class Noted(DomainEvent):
    type_name = "Noted"
    text: str


async def test_a_stored_envelope_copies_with_changes_and_stays_as_it_was() -> None:
    store = InMemoryEventStore()
    context = CommandContext(actor=Actor(subject="alice", roles=("super_admin",)), org_id="org-1")
    await store.append("notes", "n-1", 0, [Noted(text="a"), Noted(text="b")], context)
    first, second = await store.read_all()

    moved = first.model_copy(update={"org_id": "org-2", "data": {"text": "z"}})
    again = second.model_copy(update={"position": 9})

    assert (moved.org_id, moved.data, moved.hash) == ("org-2", {"text": "z"}, first.hash)
    assert (first.org_id, first.data) == ("org-1", {"text": "a"})
    assert (again.position, second.position) == (9, 2)
    assert first.model_fields_set == second.model_fields_set == set(type(first).model_fields)
    assert isinstance(first.__pydantic_fields_set__, frozenset)  # still the store's shared one
    assert first.model_copy() == first
