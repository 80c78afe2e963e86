"""GrpcVersionLookup against a fake DatasetService on a free port: facts, and whose fault each refusal is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc
from modelyard_events.domain_errors import IllegalTransition, NotFound
from modelyard_grpc import (
    DependencyFailed,
    DependencyUnavailable,
    Principal,
    Role,
    channel,
    mint_token,
    status_for,
    testing,
)
from modelyard_grpc.auth import bearer_token
from modelyard_grpc.testing import TEST_ISSUER, TEST_TOKEN_PUBLIC_KEYS, verifier_for
from modelyard_job.config import JobSettings
from modelyard_job.dataset_client import GrpcVersionLookup


class FakeDatasets(datasets_pb2_grpc.DatasetServiceServicer):
    """GetVersion answers ds-1/2 (ready, classification), or refuses with `refusal`, or stalls."""

    def __init__(self) -> None:
        self.refusal: tuple[grpc.StatusCode, str] | None = None
        self.stall = False
        self.authorizations: list[str] = []

    async def GetVersion(  # noqa: N802 — the proto's method name
        self, request: datasets_pb2.VersionRef, context: aio.ServicerContext[Any, Any]
    ) -> datasets_pb2.DatasetVersion:
        self.authorizations.append(str(dict(context.invocation_metadata() or ()).get("authorization")))
        if self.stall:  # a dataset-svc that answers after the caller's deadline, not a wait of the test
            await asyncio.sleep(5)
        if self.refusal is not None:
            await context.abort(*self.refusal)
        failing = datasets_pb2.ReadinessCheck(name="label_agreement", passed=False, detail="0.7 < 0.8")
        return datasets_pb2.DatasetVersion(
            dataset_id=request.dataset_id,
            version=request.version,
            org_id="acme",
            label_schema=datasets_pb2.LabelSchema(task=datasets_pb2.LABEL_TASK_CLASSIFICATION),
            readiness=datasets_pb2.ReadinessReport(ready=False, checks=[failing]),
        )


def dataset_svc(fake: FakeDatasets) -> AbstractAsyncContextManager[str]:
    """Serve the fake on a free local port; yields its target."""
    return testing.serving_fake(datasets_pb2_grpc.add_DatasetServiceServicer_to_server, fake)


@asynccontextmanager
async def lookup_of(target: str, timeout_s: float = 10.0) -> AsyncIterator[GrpcVersionLookup]:
    # What job-svc's MODELYARD_TOKEN_FILE holds: its own auditor token, written by the issuer.
    async with channel(target, mint_token(TEST_ISSUER, "job-svc", None, ["auditor"], 600)) as ch:
        yield GrpcVersionLookup(datasets_pb2_grpc.DatasetServiceStub(ch), timeout_s)


@pytest.fixture
async def fake() -> FakeDatasets:
    return FakeDatasets()


async def test_the_facts_of_a_version_are_read_with_job_svcs_own_auditor_token(fake: FakeDatasets) -> None:
    async with dataset_svc(fake) as target, lookup_of(target) as lookup:
        facts = await lookup.version("ds-1", 2)

    assert (facts.dataset_id, facts.version, facts.org_id, facts.task) == (
        "ds-1",
        2,
        "acme",
        "classification",
    )
    assert (facts.ready, facts.failed_checks) == (False, ["label_agreement: 0.7 < 0.8"])
    caller = verifier_for().verify(bearer_token(fake.authorizations[0]))
    assert caller == Principal("job-svc", None, frozenset({Role.AUDITOR}))


def test_job_svc_reads_its_own_token_from_the_file_its_issuer_renews(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_TOKEN_PUBLIC_KEYS", TEST_TOKEN_PUBLIC_KEYS)
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b:9092")
    with pytest.raises(ValueError, match="MODELYARD_TOKEN_FILE is not set"):
        JobSettings().own_token()

    (tmp_path / "job-svc.token").write_text("a-token\n")
    monkeypatch.setenv("MODELYARD_TOKEN_FILE", str(tmp_path / "job-svc.token"))
    assert JobSettings().own_token()() == "a-token"


@pytest.mark.parametrize(
    ("code", "error", "status"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFound, grpc.StatusCode.NOT_FOUND),
        (grpc.StatusCode.FAILED_PRECONDITION, IllegalTransition, grpc.StatusCode.FAILED_PRECONDITION),
    ],
)
async def test_a_missing_or_unpublished_version_is_the_callers_problem_in_dataset_svcs_words(
    fake: FakeDatasets, code: grpc.StatusCode, error: type[Exception], status: grpc.StatusCode
) -> None:
    fake.refusal = (code, "dataset ds-1 has no published version 2")
    async with dataset_svc(fake) as target, lookup_of(target) as lookup:
        with pytest.raises(error, match=r"^dataset ds-1 has no published version 2$") as refused:
            await lookup.version("ds-1", 2)
    assert status_for(refused.value).code is status


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED])
async def test_an_unavailable_or_overloaded_dataset_svc_is_retryable(
    fake: FakeDatasets, code: grpc.StatusCode
) -> None:
    fake.refusal = (code, "shedding load")
    async with dataset_svc(fake) as target, lookup_of(target) as lookup:
        with pytest.raises(
            DependencyUnavailable, match=f"dataset://ds-1/2.*{code.name}.*try again"
        ) as refused:
            await lookup.version("ds-1", 2)
    assert status_for(refused.value).code is grpc.StatusCode.UNAVAILABLE


async def test_a_dataset_svc_that_answers_too_late_is_retryable(fake: FakeDatasets) -> None:
    fake.stall = True
    async with dataset_svc(fake) as target, lookup_of(target, timeout_s=0.05) as lookup:
        with pytest.raises(DependencyUnavailable, match="DEADLINE_EXCEEDED") as refused:
            await lookup.version("ds-1", 2)
    assert status_for(refused.value).code is grpc.StatusCode.UNAVAILABLE


async def test_a_dataset_svc_that_is_not_running_is_retryable(fake: FakeDatasets) -> None:
    async with dataset_svc(fake) as target:
        pass  # the port is free again: nothing listens there
    async with lookup_of(target) as lookup:
        with pytest.raises(DependencyUnavailable, match="UNAVAILABLE") as refused:
            await lookup.version("ds-1", 2)
    assert status_for(refused.value).code is grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED])
async def test_a_refused_token_is_an_internal_error_naming_the_shared_secret(
    fake: FakeDatasets, code: grpc.StatusCode
) -> None:
    fake.refusal = (code, "bad_signature token: the signature does not match")
    async with dataset_svc(fake) as target, lookup_of(target) as lookup:
        with pytest.raises(DependencyFailed, match="renew job-svc's MODELYARD_TOKEN_FILE") as refused:
            await lookup.version("ds-1", 2)
    status = status_for(refused.value, reference="r-1")
    assert status.code is grpc.StatusCode.INTERNAL
    assert "MODELYARD_TOKEN_FILE" not in status.details  # the operator reads it in the server log


async def test_any_other_failure_of_dataset_svc_is_internal_not_the_callers(fake: FakeDatasets) -> None:
    fake.refusal = (grpc.StatusCode.INTERNAL, "boom")
    async with dataset_svc(fake) as target, lookup_of(target) as lookup:
        with pytest.raises(DependencyFailed, match=r"dataset://ds-1/2.*INTERNAL: boom") as refused:
            await lookup.version("ds-1", 2)
    assert status_for(refused.value).code is grpc.StatusCode.INTERNAL
