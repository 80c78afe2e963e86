"""The one mapping of domain errors to gRPC statuses, applied around every servicer.

InvalidArgument → INVALID_ARGUMENT (with a `google.rpc.BadRequest` field
violation in the rich status), NotFound → NOT_FOUND, IllegalTransition →
FAILED_PRECONDITION, ConcurrencyConflict → ABORTED, PermissionDenied →
PERMISSION_DENIED, QuotaExceeded → RESOURCE_EXHAUSTED, StoreBusy,
DependencyUnavailable and SourceUnavailable (another service's log) →
UNAVAILABLE. Anything else (DependencyFailed included) is INTERNAL with a
generic message and a reference; the traceback goes to the server log only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc import aio
from grpc_status import rpc_status

from modelyard_events.domain_errors import (
    DomainError,
    IllegalTransition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
)
from modelyard_events.errors import ConcurrencyConflict, SourceUnavailable, StoreBusy
from modelyard_grpc.method_handlers import Context, Handler, wrap_handler

logger = logging.getLogger(__name__)


class DependencyUnavailable(Exception):
    """Another service this call needs is down, overloaded or too slow; nothing was done, so a
    client may retry the same call later (UNAVAILABLE). The message names the service and why."""

    retryable = True


class DependencyFailed(Exception):
    """Another service this call needs refused it for a reason the caller cannot fix (e.g. the
    other service does not accept this one's token). INTERNAL: the client gets a reference, the message
    goes to the server log for the operator."""

    retryable = False


_TRANSIENT_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
_TOKEN_REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def dependency_refusal(error: grpc.aio.AioRpcError, service: str, what: str, *, caller: str) -> Exception:
    """DependencyUnavailable (retry) or DependencyFailed (an operator's fix) for `service`'s refusal
    to return `what` to `caller`, which called it with its own token.

    An unreachable, slow or overloaded service is nobody's fault and worth retrying (UNAVAILABLE); a
    refused token means the caller's own token (its MODELYARD_TOKEN_FILE) is expired, not for that
    service, or from an issuer it does not pin, which only an operator can fix (INTERNAL, explained
    in the server log). The caller's own mistakes (an unknown thing) are each adapter's to translate.
    """
    code, details = error.code(), error.details() or ""
    if code in _TRANSIENT_CODES:
        return DependencyUnavailable(
            f"{service} could not confirm {what} right now ({code.name}: {details}); try again shortly"
        )
    if code in _TOKEN_REFUSED:
        return DependencyFailed(
            f"{service} refused {caller}'s token ({code.name}: {details}): renew {caller}'s "
            f"MODELYARD_TOKEN_FILE (a token for {service}) from an issuer that {service}'s "
            "MODELYARD_TOKEN_PUBLIC_KEYS pins"
        )
    return DependencyFailed(f"{service} failed to return {what} ({code.name}: {details})")


STATUS_OF_ERROR: dict[type[Exception], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ConcurrencyConflict: grpc.StatusCode.ABORTED,
    StoreBusy: grpc.StatusCode.UNAVAILABLE,
    DependencyUnavailable: grpc.StatusCode.UNAVAILABLE,
    SourceUnavailable: grpc.StatusCode.UNAVAILABLE,
}
"""Domain error class → status code; subclasses map like their nearest listed base."""


def code_for(error: BaseException) -> grpc.StatusCode:
    """The status code of an error: its class's or nearest base's in STATUS_OF_ERROR, else INTERNAL."""
    for cls in type(error).__mro__:
        code = STATUS_OF_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def status_for(error: BaseException, reference: str | None = None) -> grpc.Status:
    """The status a client receives for `error`: code, message and rich details.

    Messages of mapped errors are for humans and pass through; an unmapped error
    becomes INTERNAL whose message only carries `reference`, never the error.
    """
    code = code_for(error)
    rich = status_pb2.Status(code=code.value[0])
    if code is grpc.StatusCode.INTERNAL:
        rich.message = f"internal error (reference {reference or '-'}); the details are in the server log"
    else:
        rich.message = error.message if isinstance(error, DomainError) else str(error)
    if isinstance(error, InvalidArgument):
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
            for field, description in error.problems.items()
        ]
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=violations))
        rich.details.append(detail)
    return rpc_status.to_status(rich)


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """(field, description) pairs of a refused call's BadRequest details (for clients and tests)."""
    rich = rpc_status.from_call(error)  # type: ignore[arg-type]  # AioRpcError has Call's sync accessors
    violations: list[tuple[str, str]] = []
    for detail in rich.details if rich is not None else ():
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations += [(v.field, v.description) for v in bad_request.field_violations]
    return violations


class ErrorMappingInterceptor(aio.ServerInterceptor):
    """Turns exceptions raised by any servicer (unary or streaming) into statuses via `status_for`.

    Installed by `build_server` on every server, outermost, so exceptions in
    other interceptors' code around the servicer are mapped too. A servicer's
    own `context.abort(...)` passes through unchanged.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """The handler, with its behavior wrapped in the error mapping."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return wrap_handler(handler, partial(_mapping_errors, handler_call_details.method))


@asynccontextmanager
async def _mapping_errors(method: str, request: Any, context: Context) -> AsyncIterator[None]:
    try:
        yield
    except aio.AbortError:
        raise  # the call already has its status
    except Exception as error:
        reference = None
        if code_for(error) is grpc.StatusCode.INTERNAL:
            reference = uuid.uuid4().hex[:12]
            logger.exception("%s failed (reference %s)", method, reference)
        await context.abort_with_status(status_for(error, reference))
