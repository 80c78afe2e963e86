"""VersionLookup over dataset-svc's gRPC API (GetVersion), translating its refusals into domain errors."""

from __future__ import annotations

import grpc

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_events.domain_errors import IllegalTransition, NotFound
from modelyard_job.app.dataset_gate import VersionFacts

_TASKS = {
    datasets_pb2.LABEL_TASK_CLASSIFICATION: "classification",
    datasets_pb2.LABEL_TASK_DETECTION: "detection",
    datasets_pb2.LABEL_TASK_NONE: "none",
}


class GrpcVersionLookup:
    """Asks dataset-svc for a published version (job-svc calls with its own auditor token)."""

    def __init__(self, stub: datasets_pb2_grpc.DatasetServiceStub, timeout_s: float = 10.0) -> None:
        self._stub, self._timeout_s = stub, timeout_s

    async def version(self, dataset_id: str, version: int) -> VersionFacts:
        """The version's facts; NotFound / IllegalTransition with dataset-svc's own message."""
        try:
            reply = await self._stub.GetVersion(
                datasets_pb2.VersionRef(dataset_id=dataset_id, version=version), timeout=self._timeout_s
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(error.details() or f"dataset {dataset_id} does not exist") from None
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                raise IllegalTransition(error.details() or "the version is not published") from None
            raise IllegalTransition(
                f"dataset-svc could not confirm dataset://{dataset_id}/{version} ({error.code().name}: "
                f"{error.details()}); try again"
            ) from None
        failed = [f"{c.name}: {c.detail}" for c in reply.readiness.checks if not c.passed]
        return VersionFacts(
            dataset_id=reply.dataset_id,
            version=reply.version,
            org_id=reply.org_id,
            task=_TASKS.get(reply.label_schema.task, "none"),
            ready=reply.readiness.ready,
            failed_checks=failed,
        )
