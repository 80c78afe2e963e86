"""Client channels that carry a bearer token, and waiting until a server is serving."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2

TokenSource = str | Callable[[], str]
"""A token, or a function returning the current one (long-lived workers renew expiring tokens)."""

# ReadEvents pages may hold up to 10,000 events: well over grpc's default 4 MiB receive limit.
MAX_RECEIVE_BYTES = 64 * 1024 * 1024
_DEFAULT_OPTIONS = (("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),)
_WATCH_HEALTH = "/grpc.health.v1.Health/Watch"


def channel(
    target: str,
    token: TokenSource | None = None,
    *,
    tls: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> aio.Channel:
    """A grpc.aio channel to `target` whose every call carries `authorization: Bearer <token>`.

    With `tls`, the token travels as call credentials (grpc refuses those on
    plaintext); without, a client interceptor adds the metadata, for local and
    in-cluster plaintext traffic. Use it as `async with channel(...) as ch:`.
    """
    all_options = [*_DEFAULT_OPTIONS, *options]
    if tls is not None:
        if token is not None:
            tls = grpc.composite_channel_credentials(tls, _call_credentials(token))
        return aio.secure_channel(target, tls, options=all_options)
    interceptors = bearer_token_interceptors(token) if token is not None else []
    return aio.insecure_channel(target, options=all_options, interceptors=interceptors)


def bearer_token_interceptors(token: TokenSource) -> list[aio.ClientInterceptor]:
    """Client interceptors adding `authorization: Bearer <token>` to calls of all four kinds.

    One instance per kind: grpc.aio files an interceptor under the first kind it
    implements only, so a single four-kind object would leave streams without a token.
    """
    return [
        _UnaryUnaryBearer(token),
        _UnaryStreamBearer(token),
        _StreamUnaryBearer(token),
        _StreamStreamBearer(token),
    ]


class _BearerToken:
    def __init__(self, token: TokenSource) -> None:
        self._token = token

    def _with_token(self, details: aio.ClientCallDetails) -> aio.ClientCallDetails:
        token = self._token() if callable(self._token) else self._token  # read per call: renewals apply
        metadata = aio.Metadata(*(details.metadata or ()), ("authorization", f"Bearer {token}"))
        return aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


class _UnaryUnaryBearer(_BearerToken, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(details), request)


class _UnaryStreamBearer(_BearerToken, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]], details: Any, request: Any
    ) -> Any:
        return await continuation(self._with_token(details), request)


class _StreamUnaryBearer(_BearerToken, aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]],
        details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._with_token(details), request_iterator)


class _StreamStreamBearer(_BearerToken, aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Callable[[aio.ClientCallDetails, Any], Awaitable[Any]],
        details: Any,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        return await continuation(self._with_token(details), request_iterator)


async def wait_until_serving(ch: aio.Channel, service: str = "", timeout_s: float = 10.0) -> None:
    """Return once the server reports `service` ("" = the whole server) SERVING.

    Watches the health service (no polling), waiting for the connection if the
    server is not up yet. Raises TimeoutError after `timeout_s`, naming the
    last status seen.
    """
    watch = ch.unary_stream(
        _WATCH_HEALTH,
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    call = watch(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s, wait_for_ready=True)
    last = "no answer"
    try:
        async for response in call:
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return
    except aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    finally:
        call.cancel()
    raise TimeoutError(f"{service or 'the server'} not SERVING after {timeout_s}s (last status: {last})")


class _TokenPlugin(grpc.AuthMetadataPlugin):
    def __init__(self, token: Callable[[], str]) -> None:
        self._token = token

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        callback((("authorization", f"Bearer {self._token()}"),), None)


def _call_credentials(token: TokenSource) -> grpc.CallCredentials:
    if callable(token):
        return grpc.metadata_call_credentials(_TokenPlugin(token))
    return grpc.access_token_call_credentials(token)
