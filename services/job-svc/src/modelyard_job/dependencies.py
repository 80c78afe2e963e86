"""Whose fault another service's refusal is, when job-svc calls it with its own token.

An unreachable, slow or overloaded service is nobody's fault and worth retrying (UNAVAILABLE); a
refused token means job-svc's own token (its MODELYARD_TOKEN_FILE) is expired, not for that service,
or from an issuer it does not pin, which only an operator can fix (INTERNAL, explained in the server
log). The caller's own mistakes (an unknown or unpublished thing) are translated by each adapter.
"""

from __future__ import annotations

import grpc

from modelyard_grpc import DependencyFailed, DependencyUnavailable

TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
TOKEN_REFUSED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def dependency_refusal(error: grpc.aio.AioRpcError, service: str, what: str) -> Exception:
    """DependencyUnavailable (retry) or DependencyFailed (an operator's fix) for `service`'s refusal
    to return `what`."""
    code, details = error.code(), error.details() or ""
    if code in TRANSIENT:
        return DependencyUnavailable(
            f"{service} could not confirm {what} right now ({code.name}: {details}); try again shortly"
        )
    if code in TOKEN_REFUSED:
        return DependencyFailed(
            f"{service} refused job-svc's token ({code.name}: {details}): renew job-svc's "
            f"MODELYARD_TOKEN_FILE (a token for {service}) from an issuer that {service}'s "
            "MODELYARD_TOKEN_PUBLIC_KEYS pins"
        )
    return DependencyFailed(f"{service} failed to return {what} ({code.name}: {details})")
