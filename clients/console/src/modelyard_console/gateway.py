"""The console's only way to the services: their gRPC stubs, with the signed-in person's token.

Channels, stubs and TLS are yard's (`modelyard_cli.connection`), so the console calls exactly what the
CLI calls, authorized the same way. A failed call becomes a `Refusal` carrying the gRPC status and the
service's message, which the pages show as they are.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from grpc import aio

from modelyard.v1 import audit_pb2_grpc
from modelyard_cli.connection import (
    DatasetSvc,
    DeploySvc,
    JobSvc,
    RegistrySvc,
    connected,
    dataset_svc_stubs,
    deploy_svc_stubs,
    job_svc_stubs,
    registry_svc_stubs,
)
from modelyard_cli.rpc_errors import is_unreachable
from modelyard_console.settings import ServiceTargets
from modelyard_grpc import TlsSettings, field_violations

Stubs = TypeVar("Stubs")
_log = logging.getLogger(__name__)
# A refused call shown as a page answers with the HTTP status closest to the gRPC one.
_HTTP_STATUS = {"PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "NOT_FOUND": 404, "UNAVAILABLE": 503}


class Refusal(Exception):
    """A call a service refused (or could not take): its gRPC status, message and bad fields."""

    def __init__(self, status: str, message: str, violations: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.violations = status, message, violations


def http_status(refusal: Refusal) -> int:
    """The HTTP status of a page showing `refusal` (409 for the statuses without a closer one)."""
    return _HTTP_STATUS.get(refusal.status, 409)


def refusal_of(error: aio.AioRpcError, service: str, target: str) -> Refusal:
    """What to show for a failed call: the status and message, or that `service` is unreachable.

    An unreachable service's details name internal hosts and ports: they go to the console's log, and
    the person sees only which service it is.
    """
    if is_unreachable(error):
        _log.warning("cannot reach %s at %s: %s", service, target, error.details())
        return Refusal("UNAVAILABLE", f"{service} is unreachable; try again later")
    try:
        violations = tuple(field_violations(error))
    except ValueError:  # rich details that contradict the status: the status alone
        violations = ()
    return Refusal(error.code().name, error.details() or "no details", violations)


class Gateway:
    """Opens calls to each service as one signed-in person: `async with gateway.jobs(token) as svc:`
    gives the stubs on one channel, and a failed call in the block raises Refusal."""

    def __init__(self, targets: ServiceTargets, tls: TlsSettings | None) -> None:
        self._targets, self._tls = targets, tls

    def jobs(self, token: str) -> AbstractAsyncContextManager[JobSvc]:
        """job-svc's JobService and QueryService."""
        return self._open("job-svc", self._targets.job, token, job_svc_stubs)

    def audit(self, token: str) -> AbstractAsyncContextManager[Any]:
        """job-svc's AuditService (the audit view and lineage graph); generated stubs carry no types."""
        return self._open("job-svc", self._targets.job, token, audit_pb2_grpc.AuditServiceStub)

    def datasets(self, token: str) -> AbstractAsyncContextManager[DatasetSvc]:
        """dataset-svc's DatasetService."""
        return self._open("dataset-svc", self._targets.dataset, token, dataset_svc_stubs)

    def registry(self, token: str) -> AbstractAsyncContextManager[RegistrySvc]:
        """registry-svc's RegistryService."""
        return self._open("registry-svc", self._targets.registry, token, registry_svc_stubs)

    def deploy(self, token: str) -> AbstractAsyncContextManager[DeploySvc]:
        """deploy-svc's DeployService."""
        return self._open("deploy-svc", self._targets.deploy, token, deploy_svc_stubs)

    @asynccontextmanager
    async def _open(
        self, service: str, target: str, token: str, stubs: Callable[[aio.Channel], Stubs]
    ) -> AsyncIterator[Stubs]:
        try:
            async with connected(target, token, stubs, self._tls) as svc:
                yield svc
        except aio.AioRpcError as error:
            raise refusal_of(error, service, target) from error
