"""Calling any RPC of a service with an empty request, for the authorization matrices."""

from __future__ import annotations

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message_factory import GetMessageClass

from modelyard_grpc import channel


def method_id(method: MethodDescriptor) -> str:
    """`Service.Method`, as a test id."""
    return f"{method.containing_service.name}.{method.name}"


async def call(target: str, token: str | None, method: MethodDescriptor) -> grpc.StatusCode:
    """Call `method` with an empty request; the status it ends with (OK when it passes the guard)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = GetMessageClass(method.input_type)()
    response_class = GetMessageClass(method.output_type)
    kinds = {
        (False, False): "unary_unary",
        (False, True): "unary_stream",
        (True, False): "stream_unary",
        (True, True): "stream_stream",
    }
    async with channel(target, token) as ch:
        kind = getattr(ch, kinds[(method.client_streaming, method.server_streaming)])
        stub = kind(
            path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        try:
            result = stub(iter([request]) if method.client_streaming else request, timeout=5)
            if method.server_streaming:
                async for _ in result:
                    break
            else:
                await result
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK
