"""GrpcModelVersionLookup against a fake RegistryService on a free port: facts, and whose fault each
refusal is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
import pytest
from grpc import aio

from modelyard.v1 import registry_pb2, registry_pb2_grpc
from modelyard_events.domain_errors import InvalidArgument
from modelyard_grpc import DependencyFailed, DependencyUnavailable, channel, mint_token, status_for, testing
from modelyard_grpc.testing import TEST_ISSUER
from modelyard_job.app.base_version_gate import ModelVersionFacts
from modelyard_job.registry_client import GrpcModelVersionLookup


class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """GetVersion answers mv-7 (released), or refuses with `refusal`."""

    def __init__(self) -> None:
        self.refusal: tuple[grpc.StatusCode, str] | None = None

    async def GetVersion(  # noqa: N802 — the proto's method name
        self, request: registry_pb2.ModelVersionRef, context: aio.ServicerContext[Any, Any]
    ) -> registry_pb2.ModelVersion:
        if self.refusal is not None:
            await context.abort(*self.refusal)
        return registry_pb2.ModelVersion(
            version_id=request.version_id,
            org_id="acme",
            ai_module="digit-reader",
            semantic_version="1.2.0",
            config=registry_pb2.ModelConfig(family="image_classifier"),
            artifact_sha256="12" * 32,
            artifact_size_bytes=4096,
            status=registry_pb2.MODEL_STATUS_RELEASED,
        )


def registry_svc(fake: FakeRegistry) -> AbstractAsyncContextManager[str]:
    return testing.serving_fake(registry_pb2_grpc.add_RegistryServiceServicer_to_server, fake)


@asynccontextmanager
async def lookup_of(target: str) -> AsyncIterator[GrpcModelVersionLookup]:
    async with channel(target, mint_token(TEST_ISSUER, "job-svc", None, ["auditor"], 600)) as ch:
        yield GrpcModelVersionLookup(registry_pb2_grpc.RegistryServiceStub(ch))


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


async def test_a_version_is_read_with_its_status_family_and_artifact(fake: FakeRegistry) -> None:
    async with registry_svc(fake) as target, lookup_of(target) as lookup:
        facts = await lookup.model_version("mv-7")

    assert facts == ModelVersionFacts(
        version_id="mv-7",
        org_id="acme",
        ai_module="digit-reader",
        family="image_classifier",
        status="released",
        semantic_version="1.2.0",
        artifact_sha256="12" * 32,
        artifact_size_bytes=4096,
    )


async def test_an_unknown_version_is_none_for_create_job_to_name(fake: FakeRegistry) -> None:
    fake.refusal = (grpc.StatusCode.NOT_FOUND, "no version mv-9")
    async with registry_svc(fake) as target, lookup_of(target) as lookup:
        assert await lookup.model_version("mv-9") is None


async def test_a_malformed_id_is_the_callers_problem_in_the_registrys_words(fake: FakeRegistry) -> None:
    fake.refusal = (grpc.StatusCode.INVALID_ARGUMENT, "version_id: must be an id")
    async with registry_svc(fake) as target, lookup_of(target) as lookup:
        with pytest.raises(InvalidArgument, match=r"^base_version_id: version_id: must be an id$"):
            await lookup.model_version("??")


async def test_a_registry_that_is_not_running_is_retryable(fake: FakeRegistry) -> None:
    async with registry_svc(fake) as target:
        pass  # the port is free again: nothing listens there
    async with lookup_of(target) as lookup:
        with pytest.raises(DependencyUnavailable, match="registry-svc could not confirm model version mv-7"):
            await lookup.model_version("mv-7")


async def test_a_refused_token_is_internal_and_tells_the_operator_what_to_renew(fake: FakeRegistry) -> None:
    fake.refusal = (grpc.StatusCode.UNAUTHENTICATED, "wrong audience")
    async with registry_svc(fake) as target, lookup_of(target) as lookup:
        with pytest.raises(DependencyFailed, match="a token for registry-svc") as refused:
            await lookup.model_version("mv-7")
    assert status_for(refused.value).code is grpc.StatusCode.INTERNAL
