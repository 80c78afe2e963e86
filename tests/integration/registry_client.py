"""A thin test client of registry-svc: the stub behind one channel, and waits on a version."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel

DRAFT, TESTING = registry_pb2.MODEL_STATUS_DRAFT, registry_pb2.MODEL_STATUS_TESTING
APPROVED, RELEASED = registry_pb2.MODEL_STATUS_APPROVED, registry_pb2.MODEL_STATUS_RELEASED
DEPRECATED = registry_pb2.MODEL_STATUS_DEPRECATED


@dataclass
class RegistryClient:
    """RegistryService on one authenticated channel."""

    stub: registry_pb2_grpc.RegistryServiceStub

    @classmethod
    @asynccontextmanager
    async def connect(cls, target: str, token: str) -> AsyncIterator[RegistryClient]:
        """A client for the block."""
        async with channel(target, token) as ch:
            yield cls(registry_pb2_grpc.RegistryServiceStub(ch))

    async def get(self, version_id: str) -> registry_pb2.ModelVersion:
        """The version as its module's stream says it is."""
        return await self.stub.GetVersion(registry_pb2.ModelVersionRef(version_id=version_id))

    async def versions(self, org_id: str, ai_module: str = "") -> list[registry_pb2.ModelVersion]:
        """Every version of the organization (or one module), newest number first."""
        reply = await self.stub.ListVersions(
            registry_pb2.ListVersionsRequest(org_id=org_id, ai_module=ai_module, page_size=100)
        )
        return list(reply.versions)

    async def registered_from(
        self, org_id: str, job_id: str, timeout_s: float = 60
    ) -> registry_pb2.ModelVersion:
        """Wait until training job `job_id` has registered a version."""
        found: list[registry_pb2.ModelVersion] = []

        async def registered() -> bool:
            found[:] = [v for v in await self.versions(org_id) if v.training_job_id == job_id]
            return bool(found)

        await eventually(registered, timeout_s, f"a version registered from job {job_id}")
        return found[0]

    async def wait_until(
        self,
        version_id: str,
        check: Callable[[registry_pb2.ModelVersion], bool],
        what: str,
        timeout_s: float = 120,
    ) -> registry_pb2.ModelVersion:
        """Wait until the version satisfies `check`."""
        seen: list[registry_pb2.ModelVersion] = []

        async def reached() -> bool:
            try:
                seen[:] = [await self.get(version_id)]
            except grpc.aio.AioRpcError as error:
                if error.code() is grpc.StatusCode.NOT_FOUND:
                    return False
                raise
            return check(seen[0])

        await eventually(reached, timeout_s, what)
        return seen[0]
