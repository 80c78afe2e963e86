"""The event base model and the envelope every stored event travels in (DESIGN §2)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import from_json
from typing_extensions import override

GENESIS_HASH = "0" * 64


class DomainEvent(BaseModel):
    """Base of every event type: an immutable past-tense fact.

    Subclasses set `type_name` (a stable string shared across services, never a
    Python path) and `schema_version` (bumped when the fields change; older
    stored versions are upcast on read, never rewritten).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type_name: ClassVar[str]
    schema_version: ClassVar[int] = 1


class Actor(BaseModel):
    """Who caused an event: the token's subject and the roles it carried."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str = Field(min_length=1)
    roles: tuple[str, ...] = ()


class StoredPayload(dict[str, Any]):
    """A payload read from the store, with the JSON text it was parsed from (the hashed text).

    Decoding validates the text straight into the event class (pydantic-core's JSON validator, half
    the cost of validating the parsed dict); everything else uses it as the plain dict it is.
    `event` keeps what the text validated into (by the registry, which checks its class): the
    runners of a process that share one decoded message (consumer/shared_decodes.py) validate it
    once, and an event, a frozen fact, is never changed by what applies it (nor are its lists and
    dicts: frozen is shallow). `message` keeps the Kafka message a payload came in when its bytes
    are what `encode_envelope` makes of that envelope (wire.py), for that envelope object only (a weak
    reference: a copy made with other fields shares the payload, not the message). Pickled, a
    payload is its text again: what it kept is only a cache.
    """

    __slots__ = ("event", "json", "message")
    json: str
    event: DomainEvent | None
    message: tuple[weakref.ref[EventEnvelope], bytes] | None

    def __reduce__(self) -> tuple[Callable[[str], StoredPayload], tuple[str]]:
        return stored_payload, (self.json,)


def stored_payload(text: str) -> StoredPayload:
    """The payload of a stored JSON text (parsed by pydantic-core: a third of json.loads's time)."""
    payload = StoredPayload(from_json(text))  # dict's own constructor: a Python __init__ costs 0.5 µs
    payload.json, payload.event, payload.message = text, None, None
    return payload


class EventEnvelope(BaseModel):
    """A recorded event: the payload plus the metadata fields of DESIGN §2.

    `data` is the payload exactly as stored, at `schema_version`; decode it with
    an EventRegistry to get the current pydantic event. `hash` chains the whole
    store: sha256(prev_hash ‖ canonical JSON of every other field).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: UUID
    stream_type: str
    stream_id: str
    stream_version: int = Field(ge=1)
    position: int = Field(ge=1)
    type: str
    schema_version: int = Field(ge=1)
    occurred_at: datetime
    actor: Actor
    org_id: str | None
    correlation_id: str
    causation_id: str | None
    data: dict[str, Any]
    prev_hash: str
    hash: str

    @override
    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy. An envelope the store built (`trusted_envelope`) shares one frozenset of
        the fields set, to which pydantic's copy would add the updated names: a copy with changes
        gets a set of its own first (the envelope copied is left as it was)."""
        if not update or not isinstance(self.__pydantic_fields_set__, frozenset):
            return super().model_copy(update=update, deep=deep)
        copied = super().model_copy(deep=deep)
        object.__setattr__(copied, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        return BaseModel.model_copy(copied, update=update)


class CommandContext(BaseModel):
    """What an append needs to know about the command that caused it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actor: Actor
    org_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None

    def with_causation(self, envelope: EventEnvelope) -> CommandContext:
        """Context for events caused by `envelope`, keeping the correlation chain."""
        return self.model_copy(
            update={"correlation_id": envelope.correlation_id, "causation_id": str(envelope.event_id)}
        )


def payload_of(event: DomainEvent) -> dict[str, Any]:
    """The JSON-compatible payload of an event, as it will be stored."""
    return event.model_dump(mode="json")


def trusted_envelope(fields: dict[str, Any]) -> EventEnvelope:
    """An envelope from fields the store itself produced, without validation.

    For rows read back from our own table and envelopes we just recorded: every
    field is present and already typed. pydantic's `model_construct` costs several
    microseconds per call on default handling; a read of 50k events builds 50k of
    these, so the store sets the instance state directly (the same attributes
    `model_construct` sets).
    """
    envelope = object.__new__(EventEnvelope)
    object.__setattr__(envelope, "__dict__", fields)
    object.__setattr__(envelope, "__pydantic_fields_set__", _ENVELOPE_FIELDS)
    object.__setattr__(envelope, "__pydantic_extra__", None)
    object.__setattr__(envelope, "__pydantic_private__", None)
    return envelope


_ENVELOPE_FIELDS = frozenset(EventEnvelope.model_fields)
