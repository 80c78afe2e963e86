"""Modelyard's event machinery: envelope, registry, store, relay, consumers, verify, replay."""

from modelyard_events.canonical import canonical_json
from modelyard_events.envelope import GENESIS_HASH, Actor, CommandContext, DomainEvent, EventEnvelope
from modelyard_events.errors import (
    ConcurrencyConflict,
    EventStoreError,
    MalformedEvent,
    StoreBusy,
    UnknownEventType,
)
from modelyard_events.registry import EventRegistry

__all__ = [
    "GENESIS_HASH",
    "Actor",
    "CommandContext",
    "ConcurrencyConflict",
    "DomainEvent",
    "EventEnvelope",
    "EventRegistry",
    "EventStoreError",
    "MalformedEvent",
    "StoreBusy",
    "UnknownEventType",
    "canonical_json",
]
