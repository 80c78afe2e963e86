"""The store-wide hash chain: hash = sha256(prev_hash ‖ canonical JSON of the envelope).

The canonical envelope text is cut in two around `position` and `prev_hash`
(adjacent in sorted key order), so the database can splice in the values it
assigns under the append lock and compute the same hash as Python does here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard_events.canonical import canonical_json, canonical_timestamp
from modelyard_events.envelope import EventEnvelope

_encode_text: Callable[[str], str] = json.encoder.encode_basestring  # the C function, where CPython has it


def _dumps(value: str | None) -> str:
    """`json.dumps(value, ensure_ascii=False)` of a text field: the encoder's own string function,
    without the encoder object's per-call setup (a None went through its whole iteration: 5 µs)."""
    return "null" if value is None else _encode_text(value)


@dataclass(frozen=True, slots=True)
class EnvelopeHalves:
    """Canonical envelope text before `"position":` and after the prev_hash value's comma."""

    head: str
    tail: str


def envelope_halves(
    *,
    actor_json: str,
    causation_id: str | None,
    correlation_id: str,
    data_json: str,
    event_id: str,
    occurred_at: str,
    org_id: str | None,
    schema_version: int,
    stream_id: str,
    stream_type: str,
    stream_version: int,
    type_name: str,
) -> EnvelopeHalves:
    """Build the two halves from already-canonical parts, keys in sorted order."""
    head = (
        f'{{"actor":{actor_json},"causation_id":{_dumps(causation_id)},'
        f'"correlation_id":{_dumps(correlation_id)},"data":{data_json},'
        f'"event_id":{_dumps(event_id)},"occurred_at":{_dumps(occurred_at)},'
        f'"org_id":{_dumps(org_id)},'
    )
    tail = (
        f'"schema_version":{schema_version},"stream_id":{_dumps(stream_id)},'
        f'"stream_type":{_dumps(stream_type)},"stream_version":{stream_version},'
        f'"type":{_dumps(type_name)}}}'
    )
    return EnvelopeHalves(head, tail)


class HalvesTemplate:
    """The halves of every event of one append, with the fields they share encoded once.

    Gives the same text as `envelope_halves`; an append of 100 events would
    otherwise JSON-encode the same stream, actor, ids and timestamp 100 times.
    """

    __slots__ = ("head_prefix", "head_suffix", "tail_middle")

    def __init__(
        self,
        *,
        actor_json: str,
        causation_id: str | None,
        correlation_id: str,
        occurred_at: str,
        org_id: str | None,
        stream_id: str,
        stream_type: str,
    ) -> None:
        self.head_prefix = (
            f'{{"actor":{actor_json},"causation_id":{_dumps(causation_id)},'
            f'"correlation_id":{_dumps(correlation_id)},"data":'
        )
        self.head_suffix = f',"occurred_at":{_dumps(occurred_at)},"org_id":{_dumps(org_id)},'
        self.tail_middle = f',"stream_id":{_dumps(stream_id)},"stream_type":{_dumps(stream_type)},'

    def halves(
        self, *, data_json: str, event_id: str, schema_version: int, stream_version: int, type_name: str
    ) -> EnvelopeHalves:
        """The halves of one event of the append."""
        head = f'{self.head_prefix}{data_json},"event_id":"{event_id}"{self.head_suffix}'
        tail = (
            f'"schema_version":{schema_version}{self.tail_middle}'
            f'"stream_version":{stream_version},"type":{_dumps(type_name)}}}'
        )
        return EnvelopeHalves(head, tail)


def chain_hash(prev_hash: str, halves: EnvelopeHalves, position: int) -> str:
    """The hash of the event at `position` whose predecessor's hash is `prev_hash`."""
    text = f'{prev_hash}{halves.head}"position":{position},"prev_hash":"{prev_hash}",{halves.tail}'
    return hashlib.sha256(text.encode()).hexdigest()


def halves_of(envelope: EventEnvelope, data_json: str | None = None) -> EnvelopeHalves:
    """Halves of a recorded envelope; pass the stored payload text when it is at hand."""
    actor = envelope.actor
    return envelope_halves(
        actor_json=actor_canonical_json(actor.subject, actor.roles),
        causation_id=envelope.causation_id,
        correlation_id=envelope.correlation_id,
        data_json=canonical_json(envelope.data) if data_json is None else data_json,
        event_id=str(envelope.event_id),
        occurred_at=canonical_timestamp(envelope.occurred_at),
        org_id=envelope.org_id,
        schema_version=envelope.schema_version,
        stream_id=envelope.stream_id,
        stream_type=envelope.stream_type,
        stream_version=envelope.stream_version,
        type_name=envelope.type,
    )


def envelope_hash(envelope: EventEnvelope, data_json: str | None = None) -> str:
    """Recompute what `envelope.hash` must be from its other fields (and its payload's text if given)."""
    return chain_hash(envelope.prev_hash, halves_of(envelope, data_json), envelope.position)


def canonical_envelope_fields(envelope: EventEnvelope) -> dict[str, Any]:
    """Every envelope field but `hash`, as JSON values: what the hash covers."""
    fields = envelope.model_dump(mode="json", exclude={"hash"})
    fields["occurred_at"] = canonical_timestamp(envelope.occurred_at)
    return fields


class RowHasher:
    """Recomputes row hashes, encoding the fields an append's rows share once per run of rows.

    The text is built in one expression (the same bytes as `chain_hash` over `HalvesTemplate`'s
    halves, which a unit test checks): a replay or verify hashes every event it reads, and the
    intermediate halves cost as much as the hash itself.
    """

    def __init__(self) -> None:
        self._shared: tuple[Any, ...] = ()
        self._head_prefix = self._head_suffix = self._tail_middle = ""

    def hash(self, row: Any) -> str:
        """The hash `row` must have, given its prev_hash and position.

        `row` holds the events table's columns in the order of `store.postgres_rows.COLUMNS`; it is
        unpacked by position, which costs a tenth of fifteen attribute lookups on a result row.
        """
        (
            position, event_id, stream_type, stream_id, stream_version, type_name, schema_version,
            occurred_at, actor, org_id, correlation_id, causation_id, data, prev, _,
        ) = row  # fmt: skip
        shared = (actor, causation_id, correlation_id, occurred_at, org_id, stream_id, stream_type)
        if shared != self._shared:
            self._shared = shared
            template = HalvesTemplate(
                actor_json=_canonical_actor(actor),
                causation_id=causation_id,
                correlation_id=correlation_id,
                occurred_at=canonical_timestamp(occurred_at),
                org_id=org_id,
                stream_id=stream_id,
                stream_type=stream_type,
            )
            self._head_prefix, self._head_suffix = template.head_prefix, template.head_suffix
            self._tail_middle = template.tail_middle
        text = (
            f'{prev}{self._head_prefix}{data},"event_id":"{event_id}"{self._head_suffix}'
            f'"position":{position},"prev_hash":"{prev}","schema_version":{schema_version}'
            f'{self._tail_middle}"stream_version":{stream_version},"type":{_type_json(type_name)}}}'
        )
        return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def _type_json(type_name: str) -> str:
    return _dumps(type_name)


@functools.lru_cache(maxsize=4096)
def actor_canonical_json(subject: str, roles: tuple[str, ...]) -> str:
    """The canonical text of Actor(subject, roles).model_dump(mode="json"); a log has few actors."""
    return canonical_json({"roles": list(roles), "subject": subject})


@functools.lru_cache(maxsize=4096)
def _canonical_actor(stored: str) -> str:
    # jsonb prints its own spacing; the hash covers the canonical form. Few distinct actors.
    return canonical_json(json.loads(stored))
