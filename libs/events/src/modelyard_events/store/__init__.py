"""Event stores: the PostgreSQL adapter and an in-memory one with the same contract."""

from modelyard_events.store.memory import InMemoryEventStore
from modelyard_events.store.pending import AppendRequest, PendingEvent, prepare_append
from modelyard_events.store.ports import EventSource, EventStore

__all__ = [
    "AppendRequest",
    "EventSource",
    "EventStore",
    "InMemoryEventStore",
    "PendingEvent",
    "prepare_append",
]
