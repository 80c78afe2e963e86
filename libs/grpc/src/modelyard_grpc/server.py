"""Starting and stopping a service's grpc.aio server: health, reflection, error mapping, grace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from modelyard_grpc.errors import ErrorMappingInterceptor

AddServicer = Callable[[Any, aio.Server], None]
"""A generated `add_<Service>Servicer_to_server` function."""

Registration = tuple[AddServicer, object]
"""(add function, servicer instance), e.g. (add_JobServiceServicer_to_server, JobServicer(...))."""

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True, slots=True)
class GrpcServer:
    """A built server, its bound port and its health service."""

    server: aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: tuple[str, ...]

    async def start(self) -> None:
        """Start serving and report SERVING for every service and overall ("")."""
        await self.server.start()
        for name in (*self.service_names, health.OVERALL_HEALTH):
            await self.health.set(name, _SERVING)

    async def set_serving(self, service_name: str, serving: bool) -> None:
        """Report one service (or "" for the whole server) as SERVING or NOT_SERVING."""
        await self.health.set(service_name, _SERVING if serving else _NOT_SERVING)

    async def stop(self, grace_s: float) -> None:
        """Report NOT_SERVING everywhere, then stop; calls in flight get `grace_s` to finish."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)


def build_server(
    servicers: Sequence[Registration],
    *,
    service_names: Sequence[str],
    port: int = 0,
    bind: str = "127.0.0.1",
    interceptors: Sequence[aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> GrpcServer:
    """A grpc.aio server bound to `bind:port` (port 0 picks a free one), not yet started.

    Registers the servicers, the health service (grpc.health.v1) and reflection
    for `service_names` (full names, e.g. "modelyard.v1.JobService"). The error
    mapping runs outermost, then `interceptors` in order (typically an
    AuthInterceptor). With `credentials` (e.g. grpc.ssl_server_credentials) the
    port is TLS, else plaintext. Call it inside the running event loop that will
    serve. Raises OSError when the address cannot be bound.
    """
    server = aio.server(interceptors=[ErrorMappingInterceptor(), *interceptors], options=list(options))
    for add_servicer, servicer in servicers:
        add_servicer(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    host = f"[{bind}]" if ":" in bind else bind
    try:
        address = f"{host}:{port}"
        bound = (
            server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        )
    except RuntimeError as error:  # grpc raises RuntimeError("Failed to bind ...")
        raise OSError(f"cannot bind gRPC server to {host}:{port}: {error}") from error
    if bound == 0:
        raise OSError(f"cannot bind gRPC server to {host}:{port}")
    return GrpcServer(server, bound, health_servicer, tuple(service_names))


@asynccontextmanager
async def serving(
    servicers: Sequence[Registration],
    *,
    service_names: Sequence[str],
    port: int = 0,
    bind: str = "127.0.0.1",
    interceptors: Sequence[aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None,
    grace_s: float = 5.0,
    options: Sequence[tuple[str, Any]] = (),
) -> AsyncIterator[GrpcServer]:
    """Build and start a server for the block; on exit, drain for `grace_s` and stop.

    `async with serving(...) as grpc_server:` then `grpc_server.port` is the bound port.
    """
    grpc_server = build_server(
        servicers,
        service_names=service_names,
        port=port,
        bind=bind,
        interceptors=interceptors,
        credentials=credentials,
        options=options,
    )
    await grpc_server.start()
    try:
        yield grpc_server
    finally:
        await grpc_server.stop(grace_s)
