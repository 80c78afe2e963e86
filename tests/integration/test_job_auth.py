"""Every job-svc RPC refuses a missing, expired or wrong-role token (DESIGN §6), as a matrix."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from modelyard.v1 import audit_pb2, datasets_pb2, events_pb2, jobs_pb2
from modelyard_devstack.platform import Platform
from modelyard_grpc import channel, mint_token
from modelyard_grpc.testing import OTHER_ISSUER
from tests.integration.dataset_client import DatasetClient, digit_files
from tests.integration.rpc_matrix import call, method_id

pytestmark = pytest.mark.integration

SERVICES = [
    jobs_pb2.DESCRIPTOR.services_by_name[name] for name in ("JobService", "QueryService", "TrainerService")
] + [
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
METHODS = [method for service in SERVICES for method in service.methods]


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_a_call_without_a_token_is_unauthenticated(
    services: Platform, method: MethodDescriptor
) -> None:
    assert await call(services.job_target, None, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_an_expired_token_is_unauthenticated(services: Platform, method: MethodDescriptor) -> None:
    expired = mint_token(services.issuer, "alice", "acme", ["super_admin"], ttl_s=-120)

    assert await call(services.job_target, expired, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_a_token_signed_with_another_secret_is_unauthenticated(
    services: Platform, method: MethodDescriptor
) -> None:
    forged = mint_token(OTHER_ISSUER, "mallory", None, ["super_admin"], 600)

    assert await call(services.job_target, forged, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_an_edge_token_is_refused_everywhere(services: Platform, method: MethodDescriptor) -> None:
    edge = services.token(("edge",), org_id="acme", subject="edge-7")

    assert await call(services.job_target, edge, method) == grpc.StatusCode.PERMISSION_DENIED


COMMANDS = [
    m
    for m in METHODS
    if m.name in {"CreateJob", "CancelJob", "PauseJob", "ResumeJob", "RetryJob", "SetPriority", "Heartbeat"}
]


@pytest.mark.parametrize("method", COMMANDS, ids=method_id)
@pytest.mark.parametrize("role", ["org_admin", "auditor"])
async def test_read_only_roles_may_not_command(
    services: Platform, method: MethodDescriptor, role: str
) -> None:
    token = services.token((role,), org_id="acme", subject=f"{role}-1")

    assert await call(services.job_target, token, method) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", [m for m in METHODS if m.name != "Heartbeat"], ids=method_id)
async def test_a_trainer_token_may_only_heartbeat(services: Platform, method: MethodDescriptor) -> None:
    trainer = services.token(("trainer",), subject="t-9")

    assert await call(services.job_target, trainer, method) == grpc.StatusCode.PERMISSION_DENIED


async def test_a_trainer_may_not_heartbeat_as_another(services: Platform) -> None:
    trainer = services.token(("trainer",), subject="t-9")
    async with channel(services.job_target, trainer) as ch:
        from modelyard.v1 import jobs_pb2_grpc

        stub = jobs_pb2_grpc.TrainerServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Heartbeat(jobs_pb2.HeartbeatRequest(trainer_id="t-other", slots_total=1))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_whose_a_dispatch_is_is_told_to_service_tokens_only(services: Platform) -> None:
    from modelyard.v1 import jobs_pb2_grpc

    async def get_dispatch(token: str, job_id: str, dispatch_id: str) -> tuple[grpc.StatusCode, str]:
        async with channel(services.job_target, token) as ch:
            try:
                await jobs_pb2_grpc.TrainerServiceStub(ch).GetDispatch(
                    jobs_pb2.DispatchRef(job_id=job_id, dispatch_id=dispatch_id)
                )
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details() or ""
        return grpc.StatusCode.OK, ""

    trainer_svc = services.token(("auditor",), subject="trainer-svc")
    org_admin = services.token(("org_admin",), org_id="acme", subject="acme-admin")

    assert (await get_dispatch(org_admin, "j-1", "d-1"))[0] == grpc.StatusCode.PERMISSION_DENIED
    assert await get_dispatch(trainer_svc, "j-nope", "d-1") == (
        grpc.StatusCode.NOT_FOUND,
        "job j-nope has no dispatch d-1",
    )
    code, details = await get_dispatch(trainer_svc, "", "d" * 201)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "job_id" in details
    assert "dispatch_id" in details


async def test_an_org_admin_reads_only_its_own_organization_on_enterprise(services: Platform) -> None:
    from modelyard.v1 import jobs_pb2_grpc

    async def list_jobs(org_of_token: str, org_asked: str) -> grpc.StatusCode:
        async with channel(services.job_target, services.token(("org_admin",), org_id=org_of_token)) as ch:
            try:
                await jobs_pb2_grpc.JobServiceStub(ch).ListJobs(jobs_pb2.ListJobsRequest(org_id=org_asked))
            except grpc.aio.AioRpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    assert await list_jobs("acme", "acme") == grpc.StatusCode.OK
    assert await list_jobs("acme", "") == grpc.StatusCode.OK  # filled in with its own organization
    assert await list_jobs("acme", "globex") == grpc.StatusCode.PERMISSION_DENIED
    assert await list_jobs("smallco", "smallco") == grpc.StatusCode.PERMISSION_DENIED  # Professional plan


async def test_an_estimate_is_confined_to_the_callers_organization_and_its_datasets(
    services: Platform, datasets: DatasetClient, fresh_org: str
) -> None:
    from modelyard.v1 import jobs_pb2_grpc

    async def estimate(org_of_token: str, org_asked: str, uri: str) -> tuple[grpc.StatusCode, str, int]:
        token = services.token(("org_admin",), org_id=org_of_token)
        request = jobs_pb2.CreateJobRequest(
            org_id=org_asked, ai_module="digit-reader", family="image_classifier", dataset_uri=uri
        )
        async with channel(services.job_target, token) as ch:
            try:
                reply = await jobs_pb2_grpc.QueryServiceStub(ch).EstimateJob(request)
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details() or "", 0
        return grpc.StatusCode.OK, reply.explanation, reply.train_samples

    dataset = await datasets.build(fresh_org, digit_files(5, [0, 1]), ["0", "1"])
    version = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id)
    )
    code, explanation, train_samples = await estimate(fresh_org, fresh_org, version.uri)
    assert (code, train_samples) == (grpc.StatusCode.OK, version.split.train)
    assert "no completed training run of digit-reader" in explanation  # this organization has none yet
    # Another organization asks about it: neither its own org_id nor this dataset's size is its to learn.
    assert (await estimate("acme", fresh_org, version.uri))[0] == grpc.StatusCode.PERMISSION_DENIED
    code, details, _ = await estimate("acme", "acme", version.uri)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "not in your organization" in details
    # A request CreateJob would refuse is refused the same way, the field named.
    code, details, _ = await estimate(fresh_org, fresh_org, "ftp://nowhere")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "dataset_uri" in details
