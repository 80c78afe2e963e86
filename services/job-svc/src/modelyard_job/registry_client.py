"""ModelVersionLookup over registry-svc's gRPC API (GetVersion), translating its refusals into ours.

job-svc calls with its own token (role auditor, which the registry grants reads). An unknown version
is the caller's mistake (None: CreateJob names it); a malformed id too (INVALID_ARGUMENT, with the
registry's words); everything else is the registry's or the operator's (dependencies.py).
"""

from __future__ import annotations

import grpc

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument
from modelyard_grpc import dependency_refusal
from modelyard_job.app.base_version_gate import ModelVersionFacts


class GrpcModelVersionLookup:
    """Asks registry-svc for a model version."""

    def __init__(self, stub: registry_pb2_grpc.RegistryServiceStub, timeout_s: float = 10.0) -> None:
        self._stub, self._timeout_s = stub, timeout_s

    async def model_version(self, version_id: str) -> ModelVersionFacts | None:
        """The version's facts, None when the registry has no such version. Raises InvalidArgument for
        an id the registry refuses as malformed, DependencyUnavailable when registry-svc is down, slow
        or overloaded (retry later) and DependencyFailed for any other refusal."""
        try:
            reply = await self._stub.GetVersion(
                registry_pb2.ModelVersionRef(version_id=version_id), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument("base_version_id", error.details() or "malformed") from error
            raise dependency_refusal(
                error, "registry-svc", f"model version {version_id}", caller="job-svc"
            ) from error
        return facts_of(reply)


def facts_of(version: registry_pb2.ModelVersion) -> ModelVersionFacts:
    """What job-svc reads of a ModelVersion message."""
    status = registry_pb2.ModelStatus.Name(version.status).removeprefix("MODEL_STATUS_").lower()
    return ModelVersionFacts(
        version_id=version.version_id,
        org_id=version.org_id,
        ai_module=version.ai_module,
        family=version.config.family,
        status=status,
        semantic_version=version.semantic_version,
        artifact_sha256=version.artifact_sha256,
        artifact_size_bytes=version.artifact_size_bytes,
    )
