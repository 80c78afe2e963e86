"""Server bootstrap and client channels: ports, health, readiness, grace, token transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_support import MintToken, seeded_store
from typing_extensions import override

from modelyard.v1 import events_pb2, events_pb2_grpc
from modelyard_grpc import (
    EVENT_LOG_RULES,
    AccessPolicy,
    AuthInterceptor,
    EventLogServicer,
    build_server,
    channel,
    serving,
    wait_until_serving,
)
from modelyard_grpc.testing import verifier_for

EVENT_LOG = "modelyard.v1.EventLog"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _event_log_servicer() -> list[tuple[object, object]]:
    return [(events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(await seeded_store()))]


async def _health(ch: aio.Channel, service: str) -> int:
    response = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service))
    return int(response.status)


class TestReadiness:
    async def test_port_zero_binds_a_free_port_and_every_service_reports_serving(self) -> None:
        async with (
            serving(await _event_log_servicer(), service_names=[EVENT_LOG], grace_s=0) as server,
            channel(f"127.0.0.1:{server.port}") as ch,
        ):
            assert server.port > 0
            await wait_until_serving(ch, EVENT_LOG, timeout_s=5)
            assert await _health(ch, "") == await _health(ch, EVENT_LOG) == SERVING

    async def test_waiting_starts_before_the_server_and_ends_when_it_serves(self) -> None:
        server = build_server(await _event_log_servicer(), service_names=[EVENT_LOG])
        async with channel(f"127.0.0.1:{server.port}") as ch:
            waiting = asyncio.create_task(wait_until_serving(ch, EVENT_LOG, timeout_s=10))
            await server.start()
            await waiting
            await server.stop(0)

    async def test_waiting_for_a_service_that_never_serves_times_out(self) -> None:
        async with (
            serving(await _event_log_servicer(), service_names=[EVENT_LOG], grace_s=0) as server,
            channel(f"127.0.0.1:{server.port}") as ch,
        ):
            with pytest.raises(TimeoutError, match="SERVICE_UNKNOWN"):
                await wait_until_serving(ch, "modelyard.v1.Nothing", timeout_s=0.3)

    async def test_a_service_can_be_marked_not_serving(self) -> None:
        async with (
            serving(await _event_log_servicer(), service_names=[EVENT_LOG], grace_s=0) as server,
            channel(f"127.0.0.1:{server.port}") as ch,
        ):
            await server.set_serving(EVENT_LOG, False)
            assert await _health(ch, EVENT_LOG) == NOT_SERVING

    async def test_an_unusable_address_is_an_os_error(self) -> None:
        with pytest.raises(OSError, match="cannot bind"):
            build_server([], service_names=[], bind="203.0.113.7", port=1)


class SlowEventLog(events_pb2_grpc.EventLogServicer):
    """ReadEvents waits until released, to hold a call in flight during shutdown."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    @override
    async def ReadEvents(self, request: object, context: object) -> events_pb2.ReadEventsResponse:
        self.entered.set()
        await self.release.wait()
        return events_pb2.ReadEventsResponse(head_position=7)


class TestGracefulStop:
    async def test_stopping_reports_not_serving_and_lets_calls_in_flight_finish(self) -> None:
        slow = SlowEventLog()
        server = build_server(
            [(events_pb2_grpc.add_EventLogServicer_to_server, slow)], service_names=[EVENT_LOG]
        )
        await server.start()
        async with channel(f"127.0.0.1:{server.port}") as ch:
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=EVENT_LOG))
            assert (await watch.read()).status == SERVING  # type: ignore[union-attr]
            in_flight = events_pb2_grpc.EventLogStub(ch).ReadEvents(events_pb2.ReadEventsRequest())
            await slow.entered.wait()
            stopping = asyncio.create_task(server.stop(grace_s=10))
            assert (await watch.read()).status == NOT_SERVING  # type: ignore[union-attr]
            watch.cancel()  # an open stream would hold the stop for the whole grace period
            with pytest.raises(TimeoutError):  # the stop waits for the call in flight
                await asyncio.wait_for(asyncio.shield(stopping), timeout=0.2)
            slow.release.set()
            assert (await in_flight).head_position == 7
            await stopping


class TestTokenTransport:
    @asynccontextmanager
    async def _auth_server(self, credentials: grpc.ServerCredentials | None = None) -> AsyncIterator[int]:
        auth = AuthInterceptor(verifier_for(), AccessPolicy(EVENT_LOG_RULES))
        async with serving(
            await _event_log_servicer(),
            service_names=[EVENT_LOG],
            interceptors=[auth],
            credentials=credentials,
            grace_s=0,
        ) as server:
            yield server.port

    async def test_a_token_function_is_asked_for_each_call(self, token: MintToken) -> None:
        asked = []

        def current_token() -> str:
            asked.append(1)
            return token("auditor-1", None, ["auditor"])

        async with self._auth_server() as port, channel(f"127.0.0.1:{port}", current_token) as ch:
            stub = events_pb2_grpc.EventLogStub(ch)
            for _ in range(2):
                await stub.ReadEvents(events_pb2.ReadEventsRequest(limit=1))
        assert len(asked) == 2

    @pytest.mark.parametrize("as_function", [False, True])
    async def test_over_a_secure_channel_the_token_travels_as_call_credentials(
        self, token: MintToken, as_function: bool
    ) -> None:
        local = grpc.LocalConnectionType.LOCAL_TCP
        minted = token("auditor-1", None, ["auditor"])
        async with self._auth_server(grpc.local_server_credentials(local)) as port:
            tls = grpc.local_channel_credentials(local)
            async with channel(
                f"127.0.0.1:{port}", (lambda: minted) if as_function else minted, tls=tls
            ) as ch:
                response = await events_pb2_grpc.EventLogStub(ch).ReadEvents(
                    events_pb2.ReadEventsRequest(limit=2)
                )
        assert len(response.events) == 5  # the first append holds 5: a page ends at its signed head
