"""Rebuilding a grpc.aio method handler around its behavior, for any of the four RPC kinds.

Server interceptors use these to run code around the servicer method itself
(not just around the handler lookup), which is where the request, the context
and the servicer's exceptions are.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeAlias

import grpc
from grpc import aio

# Strings: grpc's classes are generic only in the type stubs, not at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "aio.ServicerContext[Any, Any]"
Scope: TypeAlias = "Callable[[Any, Context], AbstractAsyncContextManager[None]]"
"""Entered around one call of a behavior, with the request (or request iterator) and context."""

_FACTORIES: dict[str, Callable[..., Handler]] = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def kind_of(handler: Handler) -> str:
    """`unary_unary`, `unary_stream`, `stream_unary` or `stream_stream`."""
    request = "stream" if handler.request_streaming else "unary"
    response = "stream" if handler.response_streaming else "unary"
    return f"{request}_{response}"


def wrap_handler(handler: Handler, scope: Scope) -> Handler:
    """The same handler whose behavior runs inside `scope(request, context)`.

    A response stream stays inside the scope until its last message, so an
    exception raised mid-stream is seen by the scope. Behaviors must be async
    (grpc.aio decides how to drive a handler from whether it is an async
    generator function, so the wrapper keeps that shape).
    """
    kind = kind_of(handler)
    return _FACTORIES[kind](
        _wrapped(getattr(handler, kind), scope), handler.request_deserializer, handler.response_serializer
    )


def refusing_handler(handler: Handler, code: grpc.StatusCode, message: str) -> Handler:
    """A handler of the same kind and codecs that answers every call with `code` and `message`."""

    async def refuse(request: Any, context: Context) -> None:
        await context.abort(code, message)

    return _FACTORIES[kind_of(handler)](refuse, handler.request_deserializer, handler.response_serializer)


def _wrapped(behavior: Callable[..., Any], scope: Scope) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
            async with scope(request, context):
                async for response in behavior(request, context):
                    yield response

        return streaming
    if inspect.iscoroutinefunction(behavior):

        async def awaiting(request: Any, context: Context) -> Any:
            async with scope(request, context):
                return await behavior(request, context)

        return awaiting
    raise TypeError(f"{behavior!r} is not async: servicers on a grpc.aio server must use `async def`")
