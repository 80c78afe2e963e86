"""The server interceptor that authenticates every call and applies the access policy."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from functools import partial
from typing import Any

import grpc
from grpc import aio

from modelyard_events.caller import Caller
from modelyard_grpc.auth import Principal, TokenError, TokenVerifier, bearer_token
from modelyard_grpc.method_handlers import Context, Handler, refusing_handler, wrap_handler
from modelyard_grpc.policy import AccessPolicy, PlanLookup, Rule, is_public, roles_refusal, scope_refusal

logger = logging.getLogger(__name__)

_principal: ContextVar[Principal | None] = ContextVar("modelyard_principal", default=None)


def current_principal() -> Principal:
    """The verified caller of the RPC being served.

    Raises LookupError outside an RPC that AuthInterceptor let through (a
    servicer can therefore rely on it instead of checking for None).
    """
    principal = _principal.get()
    if principal is None:
        raise LookupError("no authenticated principal: not inside an RPC guarded by AuthInterceptor")
    return principal


@contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Make `principal` the current one for a block: for calling servicers directly in unit tests."""
    token = _principal.set(principal)
    try:
        yield principal
    finally:
        _principal.reset(token)


class AuthInterceptor(aio.ServerInterceptor):
    """Authenticates the bearer token of every call and enforces an AccessPolicy.

    - health and reflection pass without a token;
    - a missing, malformed, expired or wrongly signed token: UNAUTHENTICATED,
      the message says which;
    - an RPC without a rule (deny by default), roles the rule does not name, or
      a call outside the caller's organization, plan or self: PERMISSION_DENIED,
      the message names the RPC and who may call it;
    - otherwise the servicer runs with `current_principal()` set.
    Works for all four RPC kinds (org/subject fields need a unary request).
    """

    def __init__(
        self, verifier: TokenVerifier, policy: AccessPolicy, *, plan_of: PlanLookup | None = None
    ) -> None:
        self._verifier = verifier
        self._policy = policy
        self._plan_of = plan_of

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Look the handler up, then return it guarded, or a handler that refuses the call."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_public(method):
            return handler  # None: grpc answers UNIMPLEMENTED, there is nothing to protect
        try:
            token = bearer_token(_authorization(handler_call_details.invocation_metadata))
            principal = self._verifier.verify(token)
        except TokenError as error:
            logger.info("refused %s: %s", method, error)
            return refusing_handler(handler, grpc.StatusCode.UNAUTHENTICATED, str(error))
        rule = self._policy.rule_for(method)
        refusal = roles_refusal(method, rule, principal)
        if refusal is not None or rule is None:
            logger.info("refused %s to %s: %s", method, principal.subject, refusal)
            return refusing_handler(handler, grpc.StatusCode.PERMISSION_DENIED, str(refusal))
        return wrap_handler(handler, partial(self._confined, method, rule, principal))

    @asynccontextmanager
    async def _confined(
        self, method: str, rule: Rule, principal: Principal, request: Any, context: Context
    ) -> AsyncIterator[None]:
        refusal = await scope_refusal(rule, principal, request, self._plan_of)
        if refusal is not None:
            logger.info("refused %s to %s: %s", method, principal.subject, refusal)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method}: {refusal}")
        token = _principal.set(principal)
        try:
            yield
        finally:
            # An abandoned response stream may be closed by the event loop's
            # finalizer in another context; the RPC's own context dies with it anyway.
            with suppress(ValueError):
                _principal.reset(token)


def _authorization(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            return value.decode() if isinstance(value, bytes) else value
    return None


def caller_of(context: Context) -> Caller:
    """The RPC's principal as an event actor, with the client's `x-correlation-id` if it sent one."""
    metadata = dict(context.invocation_metadata() or ())
    correlation = metadata.get("x-correlation-id")
    correlation_id = correlation if isinstance(correlation, str) and correlation else str(uuid.uuid4())
    return Caller(current_principal().as_actor(), correlation_id)
