"""What yard tells a person when a call fails: the status, the server's message, the bad fields."""

from __future__ import annotations

import grpc
from grpc import aio

from modelyard_cli.connection import JOB_SVC, ServiceAddress
from modelyard_grpc import field_violations

# grpc's wording when no connection could be made (refused, unresolvable, unreachable).
_UNREACHABLE_MARKERS = ("failed to connect", "connection refused", "dns resolution failed", "unreachable")


def is_unreachable(error: aio.AioRpcError) -> bool:
    """True when the call failed because the server could not be reached at all."""
    details = (error.details() or "").lower()
    return error.code() is grpc.StatusCode.UNAVAILABLE and any(m in details for m in _UNREACHABLE_MARKERS)


def describe_rpc_error(error: aio.AioRpcError, target: str, service: ServiceAddress = JOB_SVC) -> list[str]:
    """The lines to print on stderr: `error: <STATUS>: <details>`, then one line per field violation.

    An unreachable server gets a line naming `service`, `target` and how to point yard elsewhere instead.
    """
    if is_unreachable(error):
        return [
            f"error: cannot reach {service.name} at {target} ({error.details()})",
            f"set {service.option} or {service.env} to where {service.name} listens (host:port)",
        ]
    lines = [f"error: {error.code().name}: {error.details() or 'no details'}"]
    lines += [f"  {field}: {description}" for field, description in _violations(error)]
    return lines


def _violations(error: aio.AioRpcError) -> list[tuple[str, str]]:
    try:
        return field_violations(error)
    except ValueError:  # rich details that contradict the status: show the status alone
        return []
