"""The event log over gRPC: envelope ↔ protobuf, ReadEvents, and an EventSource client.

A service serves its store through `EventLogServicer` (or delegates its own
ReadEvents to `read_events`); another service catches up from it through
`GrpcEventSource`, which is an `EventSource` like the store itself (DESIGN §3).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Protocol
from uuid import UUID

import grpc
from grpc import aio
from pydantic import ValidationError
from typing_extensions import override

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_events.canonical import canonical_json
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.envelope import Actor, EventEnvelope
from modelyard_events.errors import MalformedEvent, SourceUnavailable
from modelyard_events.hashing import envelope_hash
from modelyard_events.store.ports import EventSource

DEFAULT_PAGE = 1_000
MAX_PAGE = 10_000
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
        data_json=canonical_json(envelope.data),
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
        return EventEnvelope(
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
            data=json.loads(message.data_json),
            prev_hash=message.prev_hash,
            hash=message.hash,
        )
    except (ValueError, ValidationError) as error:  # bad UUID, JSON or field values
        raise MalformedEvent(f"event at position {message.position} is not an envelope: {error}") from error


async def read_events(
    source: EventSource, request: events_pb2.ReadEventsRequest
) -> events_pb2.ReadEventsResponse:
    """One page of `source` after `request.after_position` (limit 0 → 1000, at most 10,000).

    The head position is read after the page, so it is never below the page's
    last position: a reader is caught up when its last position equals it.
    Raises InvalidArgument for a negative position or a limit out of range.
    """
    if request.after_position < 0:
        raise InvalidArgument("after_position", f"must be 0 or more, not {request.after_position}")
    if not 0 <= request.limit <= MAX_PAGE:
        raise InvalidArgument("limit", f"must be 1..{MAX_PAGE} (0 means {DEFAULT_PAGE}), not {request.limit}")
    events = await source.read_all(request.after_position, request.limit or DEFAULT_PAGE)
    head = await source.head_position()
    return events_pb2.ReadEventsResponse(events=[envelope_to_proto(e) for e in events], head_position=head)


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

    `read_all` returns up to `limit` events, paging when `limit` exceeds what one
    call may return. With `verify_hashes`, every received envelope's hash is
    recomputed, so a conversion or transport fault raises MalformedEvent instead
    of feeding a projection a wrong event.
    """

    def __init__(self, stub: ReadEventsStub, *, timeout_s: float = 30.0, verify_hashes: bool = True) -> None:
        self._stub = stub
        self._timeout_s = timeout_s
        self._verify_hashes = verify_hashes

    async def read_all(self, after_position: int = 0, limit: int = DEFAULT_PAGE) -> list[EventEnvelope]:
        """Events with position > after_position, ascending, at most `limit`."""
        events: list[EventEnvelope] = []
        while len(events) < limit:
            wanted = min(limit - len(events), MAX_PAGE)
            response = await self._read(after_position, wanted)
            page = [self._decoded(message) for message in response.events]
            events += page
            if len(page) < wanted:
                break
            after_position = page[-1].position
        return events

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
        if self._verify_hashes and _recomputed_hash(envelope) != envelope.hash:
            raise MalformedEvent(f"event at position {envelope.position} does not match its hash")
        return envelope


def _recomputed_hash(envelope: EventEnvelope) -> str | None:
    try:
        return envelope_hash(envelope)
    except ValueError:  # a payload that has no canonical form (e.g. an infinite float)
        return None


def _conforms(source: GrpcEventSource) -> EventSource:
    return source  # mypy checks here that GrpcEventSource satisfies the EventSource protocol
