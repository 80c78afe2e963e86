"""Every dataset-svc RPC refuses a missing, expired or wrong-role token (DESIGN §6), as a matrix."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from modelyard.v1 import datasets_pb2, datasets_pb2_grpc, events_pb2
from modelyard_devstack.platform import Platform
from modelyard_grpc import channel, mint_token
from tests.integration.dataset_client import DatasetClient, digit_files
from tests.integration.rpc_matrix import call, method_id

pytestmark = pytest.mark.integration

SERVICES = [
    datasets_pb2.DESCRIPTOR.services_by_name["DatasetService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
METHODS = [method for service in SERVICES for method in service.methods]
COMMANDS = {"CreateDataset", "UploadSamples", "LabelSamples", "ReviewSample", "PublishVersion"}
TRAINER_READS = {"GetVersion", "GetManifest", "DownloadManifest", "DownloadSamples"}


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_a_call_without_a_token_is_unauthenticated(
    services: Platform, method: MethodDescriptor
) -> None:
    assert await call(services.dataset_target, None, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_an_expired_token_is_unauthenticated(services: Platform, method: MethodDescriptor) -> None:
    expired = mint_token(services.issuer, "alice", "acme", ["super_admin"], ttl_s=-120)
    assert await call(services.dataset_target, expired, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_an_edge_token_is_refused_everywhere(services: Platform, method: MethodDescriptor) -> None:
    edge = services.token(("edge",), org_id="acme", subject="edge-7")
    assert await call(services.dataset_target, edge, method) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", [m for m in METHODS if m.name in COMMANDS], ids=method_id)
@pytest.mark.parametrize("role", ["org_admin", "auditor", "trainer"])
async def test_only_super_admins_change_datasets(
    services: Platform, method: MethodDescriptor, role: str
) -> None:
    token = services.token((role,), org_id="acme", subject=f"{role}-1")
    assert await call(services.dataset_target, token, method) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", [m for m in METHODS if m.name not in TRAINER_READS], ids=method_id)
async def test_a_trainer_reads_only_versions(services: Platform, method: MethodDescriptor) -> None:
    trainer = services.token(("trainer",), subject="t-9")
    assert await call(services.dataset_target, trainer, method) == grpc.StatusCode.PERMISSION_DENIED


async def test_an_org_admin_sees_its_own_datasets_only(
    services: Platform, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, ["0", "1"])
    await datasets.upload(dataset.dataset_id, [(n, d) for n, d, _ in digit_files(1, [0])])

    async def get(org_of_token: str) -> tuple[grpc.StatusCode, str]:
        token = services.token(("org_admin",), org_id=org_of_token)
        async with channel(services.dataset_target, token) as ch:
            try:
                await datasets_pb2_grpc.DatasetServiceStub(ch).GetDataset(
                    datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id)
                )
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details() or ""
        return grpc.StatusCode.OK, ""

    assert (await get(fresh_org))[0] == grpc.StatusCode.OK
    code, details = await get("org-someone-else")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "not in your organization (org-someone-else)" in details
    assert fresh_org not in details  # which organization owns the dataset is not the caller's to learn
