"""The event log over gRPC: envelope ↔ protobuf, ReadEvents, and an EventSource client.

A service serves its store through `EventLogServicer` (or delegates its own
ReadEvents to `read_events`); another service catches up from it through
`GrpcEventSource`, which is an `EventSource` like the store itself (DESIGN §3).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, Protocol
from uuid import UUID

import grpc
from grpc import aio
from pydantic import ValidationError
from typing_extensions import override

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_events.canonical import canonical_json
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.envelope import Actor, EventEnvelope, StoredPayload, stored_payload
from modelyard_events.errors import MalformedEvent, SourceUnavailable
from modelyard_events.signing import SignedHead
from modelyard_events.store.ports import EventSource, SignedPage
from modelyard_events.wire import checked_envelope

DEFAULT_PAGE = 1_000
MAX_PAGE = 10_000
# Bytes of events per ReadEvents reply: well under gRPC's 4 MiB message limit, whatever one append
# holds (a page that reaches the cap ends before its signed head, and the reader reads on).
MAX_PAGE_BYTES = 2 * 1024 * 1024
_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_INT64_MAX = 2**63 - 1  # reading after it returns no events, only the head position


def envelope_to_proto(envelope: EventEnvelope) -> events_pb2.EventEnvelope:
    """The protobuf form of an envelope: payload as canonical JSON, time to the microsecond.

    `envelope_from_proto` gives back an equal envelope with the same hash.
    """
    message = events_pb2.EventEnvelope(
        event_id=str(envelope.event_id),
        stream_type=envelope.stream_type,
        stream_id=envelope.stream_id,
        stream_version=envelope.stream_version,
        position=envelope.position,
        type=envelope.type,
        schema_version=envelope.schema_version,
        actor=events_pb2.Actor(subject=envelope.actor.subject, roles=envelope.actor.roles),
        correlation_id=envelope.correlation_id,
        data_json=payload_text(envelope.data),
        prev_hash=envelope.prev_hash,
        hash=envelope.hash,
    )
    message.occurred_at.FromDatetime(envelope.occurred_at)
    # proto3 `optional`: presence distinguishes None from "".
    if envelope.org_id is not None:
        message.org_id = envelope.org_id
    if envelope.causation_id is not None:
        message.causation_id = envelope.causation_id
    return message


def envelope_from_proto(message: events_pb2.EventEnvelope) -> EventEnvelope:
    """A validated envelope from its protobuf form; MalformedEvent when it is not one."""
    try:
        envelope = EventEnvelope(
            event_id=UUID(message.event_id),
            stream_type=message.stream_type,
            stream_id=message.stream_id,
            stream_version=message.stream_version,
            position=message.position,
            type=message.type,
            schema_version=message.schema_version,
            occurred_at=message.occurred_at.ToDatetime(tzinfo=UTC),
            actor=Actor(subject=message.actor.subject, roles=tuple(message.actor.roles)),
            org_id=message.org_id if message.HasField("org_id") else None,
            correlation_id=message.correlation_id,
            causation_id=message.causation_id if message.HasField("causation_id") else None,
            data={},
            prev_hash=message.prev_hash,
            hash=message.hash,
        )
        # The payload keeps the text it came as: checked_envelope requires it to be the hashed text,
        # which the registry then decodes and envelope_to_proto sends on.
        envelope.__dict__["data"] = _payload(message.data_json)
        return envelope
    except (ValueError, ValidationError) as error:  # bad UUID, JSON or field values
        raise MalformedEvent(f"event at position {message.position} is not an envelope: {error}") from error


def _payload(text: str) -> StoredPayload:
    if not text.startswith("{"):  # dict() would also take a list of pairs
        raise ValueError("data_json is not a JSON object")
    return stored_payload(text)


def payload_text(data: dict[str, Any]) -> str:
    """The canonical text of a payload: the text it was read as, when it kept one (its hash check
    requires that text to be the one its source hashed)."""
    return data.json if type(data) is StoredPayload else canonical_json(data)


async def read_events(
    source: EventSource, request: events_pb2.ReadEventsRequest
) -> events_pb2.ReadEventsResponse:
    """One page of `source` after `request.after_position` (limit 0 → 1000, at most 10,000).

    The page ends at a signed head, unless its events would pass MAX_PAGE_BYTES: then it ends
    there, and the reader reads on to the head. The head position is read after the page, so it is
    never below the page's last position: a reader is caught up when its last position equals it.
    Raises InvalidArgument for a negative position or a limit out of range.
    """
    if request.after_position < 0:
        raise InvalidArgument("after_position", f"must be 0 or more, not {request.after_position}")
    if not 0 <= request.limit <= MAX_PAGE:
        raise InvalidArgument("limit", f"must be 1..{MAX_PAGE} (0 means {DEFAULT_PAGE}), not {request.limit}")
    page = await source.read_signed(request.after_position, request.limit or DEFAULT_PAGE)
    head = await source.head_position()
    events: list[events_pb2.EventEnvelope] = []
    size = 0
    for envelope in page.events:
        message = envelope_to_proto(envelope)
        size += message.ByteSize()
        if events and size > MAX_PAGE_BYTES:
            break
        events.append(message)
    last = events[-1].position if events else request.after_position
    return events_pb2.ReadEventsResponse(
        events=events, head_position=head, heads=[head_to_proto(h) for h in page.heads if h.position <= last]
    )


def head_to_proto(head: SignedHead) -> events_pb2.SignedHead:
    """The protobuf form of a signed head."""
    return events_pb2.SignedHead(
        position=head.position, hash=head.hash, key_id=head.key_id, signature=head.signature
    )


def head_from_proto(message: events_pb2.SignedHead) -> SignedHead:
    """A signed head from its protobuf form (its signature is checked by the consumer)."""
    return SignedHead(message.position, message.hash, message.key_id, message.signature)


class EventLogServicer(events_pb2_grpc.EventLogServicer):
    """`modelyard.v1.EventLog`: serves a service's store to other services and auditors."""

    def __init__(self, source: EventSource) -> None:
        self._source = source

    @override
    async def ReadEvents(
        self,
        request: events_pb2.ReadEventsRequest,
        context: aio.ServicerContext[events_pb2.ReadEventsRequest, events_pb2.ReadEventsResponse],
    ) -> events_pb2.ReadEventsResponse:
        """One page of the log; see `read_events`."""
        return await read_events(self._source, request)


class ReadEventsStub(Protocol):
    """Any generated stub with the ReadEvents RPC (EventLogStub, JobServiceStub, …)."""

    @property
    def ReadEvents(self) -> Callable[..., Awaitable[events_pb2.ReadEventsResponse]]:  # noqa: N802 (generated name)
        """The unary ReadEvents callable of the stub."""
        ...


class GrpcEventSource:
    """An EventSource reading another service's log through its ReadEvents RPC.

    `read_signed` returns one page ending at a signed head; `read_all` returns the
    events of such pages, up to about `limit`. With `verify_hashes`, every received
    envelope's hash is recomputed, so a conversion or transport fault raises
    MalformedEvent at once (consumers check the signed heads themselves).
    """

    def __init__(self, stub: ReadEventsStub, *, timeout_s: float = 30.0, verify_hashes: bool = True) -> None:
        self._stub = stub
        self._timeout_s = timeout_s
        self._verify_hashes = verify_hashes

    async def read_all(self, after_position: int = 0, limit: int = DEFAULT_PAGE) -> list[EventEnvelope]:
        """Signed events with position > after_position, ascending, about `limit` (see read_signed)."""
        events: list[EventEnvelope] = []
        while len(events) < limit:
            page = (await self.read_signed(after_position, min(limit - len(events), MAX_PAGE))).events
            if not page:
                break
            events += page
            after_position = page[-1].position
        return events

    async def read_signed(self, after_position: int = 0, limit: int = DEFAULT_PAGE) -> SignedPage:
        """One page after `after_position` ending at a signed head, with the heads among it.

        Replies cut short by the server's byte cap are read on until the page reaches its head.
        """
        page = SignedPage([], [])
        while True:
            response = await self._read(after_position, min(max(limit, 1), MAX_PAGE))
            page.events.extend(self._decoded(message) for message in response.events)
            page.heads.extend(head_from_proto(head) for head in response.heads)
            if not response.events or (page.heads and page.heads[-1].position == page.events[-1].position):
                return dataclasses.replace(page, hashes_checked=self._verify_hashes)  # checked as decoded
            after_position = page.events[-1].position

    async def head_position(self) -> int:
        """The source's highest committed position."""
        return (await self._read(_INT64_MAX, 1)).head_position

    async def _read(self, after_position: int, limit: int) -> events_pb2.ReadEventsResponse:
        request = events_pb2.ReadEventsRequest(after_position=after_position, limit=limit)
        try:
            return await self._stub.ReadEvents(request, timeout=self._timeout_s)
        except aio.AioRpcError as error:
            if error.code() in _TRANSIENT:
                raise SourceUnavailable(
                    f"ReadEvents failed: {error.code().name}: {error.details()}"
                ) from error
            raise

    def _decoded(self, message: events_pb2.EventEnvelope) -> EventEnvelope:
        envelope = envelope_from_proto(message)
        return checked_envelope(envelope) if self._verify_hashes else envelope


def _conforms(source: GrpcEventSource) -> EventSource:
    return source  # mypy checks here that GrpcEventSource satisfies the EventSource protocol
