"""The event log over gRPC: exact envelope round trips, ReadEvents paging and limits, GrpcEventSource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc import aio
from grpc_support import EchoJobService, seeded_store, status_of
from hypothesis import given

from modelyard.v1 import events_pb2, events_pb2_grpc, jobs_pb2_grpc
from modelyard_events.envelope import EventEnvelope
from modelyard_events.errors import MalformedEvent
from modelyard_events.hashing import envelope_hash
from modelyard_events.signing import ForgedEvent
from modelyard_events.store import InMemoryEventStore
from modelyard_events.testing.sample_events import TEST_CONTEXT, CounterIncremented
from modelyard_events.testing.signing import TEST_SIGNER
from modelyard_events.testing.strategies import envelopes
from modelyard_events.wire import checked_envelope
from modelyard_grpc import (
    EventLogServicer,
    GrpcEventSource,
    channel,
    envelope_from_proto,
    envelope_to_proto,
    field_violations,
    serving,
)


def _round_trip(envelope: EventEnvelope) -> EventEnvelope:
    wire = envelope_to_proto(envelope).SerializeToString()
    return envelope_from_proto(events_pb2.EventEnvelope.FromString(wire))


class TestConversion:
    async def test_stored_envelopes_round_trip_exactly_and_keep_their_hash(self) -> None:
        store = await seeded_store()
        stored = await store.read_all()
        assert any(e.org_id is None and e.causation_id is not None for e in stored)
        for envelope in stored:
            copy = _round_trip(envelope)
            assert copy == envelope
            assert copy.model_dump() == envelope.model_dump()
            assert envelope_hash(copy) == envelope.hash

    @given(envelopes)
    def test_any_envelope_round_trips(self, envelope: EventEnvelope) -> None:
        assert _round_trip(envelope) == envelope

    def test_an_empty_organization_stays_distinct_from_none(self) -> None:
        message = events_pb2.EventEnvelope(org_id="")
        assert message.HasField("org_id")
        assert not events_pb2.EventEnvelope().HasField("org_id")

    async def test_the_payload_travels_as_the_stored_canonical_json(self) -> None:
        envelope = (await (await seeded_store(streams=1, increments=0)).read_all())[0]
        assert envelope_to_proto(envelope).data_json == '{"name":"counter-0"}'

    @pytest.mark.parametrize(
        ("field", "value"), [("event_id", "not-a-uuid"), ("data_json", "[1]"), ("data_json", "{bad")]
    )
    async def test_a_message_that_is_no_envelope_is_malformed(self, field: str, value: str) -> None:
        envelope = (await (await seeded_store(streams=1, increments=0)).read_all())[0]
        message = envelope_to_proto(envelope)
        setattr(message, field, value)
        with pytest.raises(MalformedEvent):
            envelope_from_proto(message)

    @pytest.mark.parametrize(
        ("served", "refusal"),
        [
            ('{"name":"counter-1"}', "does not match its hash"),  # another payload
            # The same payload in other spacing, with an escape, with a duplicate key that parsers
            # read differently:
            ('{"name": "counter-0"}', "not the text its source hashed"),
            ('{"name":"counter-\\u0030"}', "not the text its source hashed"),
            ('{"name":"forged","name":"counter-0"}', "not the text its source hashed"),
        ],
    )
    async def test_a_payload_text_must_be_the_very_text_its_source_hashed(
        self, served: str, refusal: str
    ) -> None:
        """The text is what the registry decodes and what is sent on, so parsing to the same payload
        is not enough."""
        envelope = (await (await seeded_store(streams=1, increments=0)).read_all())[0]
        message = envelope_to_proto(envelope)
        checked = checked_envelope(envelope_from_proto(message))
        assert checked == envelope
        assert checked.data.json == '{"name":"counter-0"}'
        message.data_json = served
        with pytest.raises(ForgedEvent, match=refusal):
            checked_envelope(envelope_from_proto(message))


@dataclass
class Served:
    store: InMemoryEventStore
    event_log: events_pb2_grpc.EventLogStub
    job_service: jobs_pb2_grpc.JobServiceStub


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[Served]:
    store = await seeded_store()  # 3 counters of 5 events, then 1: positions 1..16
    registrations = [
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
        (jobs_pb2_grpc.add_JobServiceServicer_to_server, EchoJobService(store)),
    ]
    names = ["modelyard.v1.EventLog", "modelyard.v1.JobService"]
    async with (
        serving(registrations, service_names=names, grace_s=0) as server,
        channel(f"127.0.0.1:{server.port}") as ch,
    ):
        yield Served(store, events_pb2_grpc.EventLogStub(ch), jobs_pb2_grpc.JobServiceStub(ch))


class TestReadEvents:
    async def _page(self, served: Served, after: int, limit: int) -> tuple[list[int], int]:
        request = events_pb2.ReadEventsRequest(after_position=after, limit=limit)
        response = await served.event_log.ReadEvents(request)
        return [e.position for e in response.events], response.head_position

    async def test_pages_follow_each_other_in_position_order(self, served: Served) -> None:
        assert await self._page(served, 0, 5) == ([1, 2, 3, 4, 5], 16)
        assert await self._page(served, 5, 5) == ([6, 7, 8, 9, 10], 16)
        assert await self._page(served, 15, 5) == ([16], 16)

    async def test_after_the_head_there_is_nothing_but_the_head(self, served: Served) -> None:
        assert await self._page(served, 16, 5) == ([], 16)
        assert await self._page(served, 2**63 - 1, 1) == ([], 16)

    async def test_a_limit_of_zero_means_a_thousand(self, served: Served) -> None:
        assert (await self._page(served, 0, 0))[0] == list(range(1, 17))

    async def test_the_largest_limit_is_accepted(self, served: Served) -> None:
        assert len((await self._page(served, 0, 10_000))[0]) == 16

    @pytest.mark.parametrize(
        ("after", "limit", "field"), [(0, 10_001, "limit"), (0, -1, "limit"), (-1, 5, "after_position")]
    )
    async def test_out_of_range_arguments_are_invalid(
        self, served: Served, after: int, limit: int, field: str
    ) -> None:
        with pytest.raises(aio.AioRpcError) as refused:
            await self._page(served, after, limit)
        assert status_of(refused.value)[0] == grpc.StatusCode.INVALID_ARGUMENT
        assert [f for f, _ in field_violations(refused.value)] == [field]


class TestGrpcEventSource:
    @pytest.mark.parametrize("stub", ["event_log", "job_service"])
    async def test_it_reads_what_the_store_holds(self, served: Served, stub: str) -> None:
        source = GrpcEventSource(getattr(served, stub))
        assert await source.read_all() == await served.store.read_all()
        # Pages end at signed heads (appends of 5 here): "4 after 3" reads through the head at 10.
        assert await source.read_all(after_position=3, limit=4) == await served.store.read_all(3, 7)
        assert await source.head_position() == await served.store.head_position() == 16

    async def test_a_limit_of_zero_reads_nothing(self, served: Served) -> None:
        assert await GrpcEventSource(served.event_log).read_all(0, 0) == []

    async def test_it_pages_past_the_largest_page_of_one_call(self) -> None:
        store = InMemoryEventStore(signer=TEST_SIGNER)
        events = [CounterIncremented(amount=i, note="x" * 400) for i in range(10_005)]
        await store.append("counter", "big", 0, events, TEST_CONTEXT)
        registration = [(events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store))]
        async with (
            serving(registration, service_names=["modelyard.v1.EventLog"], grace_s=0) as server,
            channel(f"127.0.0.1:{server.port}") as ch,
        ):
            read = await GrpcEventSource(events_pb2_grpc.EventLogStub(ch)).read_all(0, 20_000)
        assert [e.position for e in read] == list(range(1, 10_006))
        assert read[-1] == (await store.read_all(10_004, 1))[0]

    async def test_an_envelope_that_does_not_match_its_hash_is_refused(self, served: Served) -> None:
        class TamperingStub:
            async def ReadEvents(self, request: object, **options: object) -> events_pb2.ReadEventsResponse:  # noqa: N802
                response: events_pb2.ReadEventsResponse = await served.event_log.ReadEvents(
                    request, **options
                )
                response.events[1].data_json = response.events[1].data_json.replace(
                    '"amount":0', '"amount":9'
                )
                return response

        with pytest.raises(MalformedEvent, match="position 2 does not match its hash"):
            await GrpcEventSource(TamperingStub()).read_all(0, 5)
        assert len(await GrpcEventSource(TamperingStub(), verify_hashes=False).read_all(0, 5)) == 5
