"""VersionLookup over dataset-svc's gRPC API (GetVersion), translating its refusals into our errors.

Whose fault a refusal is decides its translation: a missing or unpublished version is the caller's
(NOT_FOUND, FAILED_PRECONDITION, with dataset-svc's message); an unreachable or overloaded dataset-svc
is nobody's and worth retrying (UNAVAILABLE); a refused token means job-svc's own token (its
MODELYARD_TOKEN_FILE) is expired, not for dataset-svc, or from an issuer dataset-svc does not pin,
which only an operator can fix (INTERNAL, explained in the server log).
"""

from __future__ import annotations

import grpc

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_events.domain_errors import IllegalTransition, NotFound
from modelyard_grpc import dependency_refusal
from modelyard_grpc.values import LABEL_TASKS
from modelyard_job.app.dataset_gate import VersionFacts


class GrpcVersionLookup:
    """Asks dataset-svc for a published version (job-svc calls with its own auditor token)."""

    def __init__(self, stub: datasets_pb2_grpc.DatasetServiceStub, timeout_s: float = 10.0) -> None:
        self._stub, self._timeout_s = stub, timeout_s

    async def version(self, dataset_id: str, version: int) -> VersionFacts:
        """The version's facts. Raises NotFound / IllegalTransition with dataset-svc's own message,
        DependencyUnavailable when dataset-svc is down, slow or overloaded (retry later), and
        DependencyFailed for any other refusal (a configuration problem, not the caller's)."""
        try:
            reply = await self._stub.GetVersion(
                datasets_pb2.VersionRef(dataset_id=dataset_id, version=version), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as error:
            raise refusal_of(error, f"dataset://{dataset_id}/{version}") from error
        failed = [f"{c.name}: {c.detail}" for c in reply.readiness.checks if not c.passed]
        return VersionFacts(
            dataset_id=reply.dataset_id,
            version=reply.version,
            org_id=reply.org_id,
            task=LABEL_TASKS.get(reply.label_schema.task, "unspecified"),
            ready=reply.readiness.ready,
            failed_checks=failed,
            train_samples=reply.split.train,
        )


def refusal_of(error: grpc.aio.AioRpcError, uri: str) -> Exception:
    """The error CreateJob raises when dataset-svc's GetVersion of `uri` failed with `error`."""
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details or f"{uri} does not exist")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return IllegalTransition(details or f"{uri} is not published")
    return dependency_refusal(error, "dataset-svc", uri, caller="job-svc")
