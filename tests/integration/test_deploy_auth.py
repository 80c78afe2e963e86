"""DeployService and EdgeService × roles (DESIGN §6) and their refusals of bad input, on deploy-svc."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from modelyard.v1 import deploy_pb2, deploy_pb2_grpc, events_pb2
from modelyard_devstack.platform import Platform
from modelyard_grpc import channel, mint_token
from modelyard_grpc.testing import OTHER_ISSUER
from tests.integration.rpc_matrix import call, method_id

pytestmark = pytest.mark.integration

SERVICES = [
    deploy_pb2.DESCRIPTOR.services_by_name["DeployService"],
    deploy_pb2.DESCRIPTOR.services_by_name["EdgeService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
METHODS = [method for service in SERVICES for method in service.methods]
OPERATOR_COMMANDS = [
    m
    for m in SERVICES[0].methods
    if m.name in {"StartRollout", "CancelRollout", "RollbackRollout", "CancelDeployment", "RetryDeployment"}
]
EDGE_CALLS = list(SERVICES[1].methods)


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_no_token_an_expired_or_a_forged_one_is_unauthenticated(
    services: Platform, method: MethodDescriptor
) -> None:
    expired = mint_token(services.issuer, "alice", "acme", ["super_admin"], ttl_s=-120)
    forged = mint_token(OTHER_ISSUER, "mallory", None, ["super_admin"], 600)
    for token in (None, expired, forged):
        assert await call(services.deploy_target, token, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", OPERATOR_COMMANDS, ids=method_id)
@pytest.mark.parametrize("role", ["org_admin", "auditor", "edge", "trainer"])
async def test_only_a_super_admin_deploys_cancels_retries_or_rolls_back(
    services: Platform, method: MethodDescriptor, role: str
) -> None:
    token = services.token((role,), org_id="acme", subject=f"{role}-1")

    assert await call(services.deploy_target, token, method) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("method", EDGE_CALLS, ids=method_id)
@pytest.mark.parametrize("role", ["org_admin", "auditor", "trainer"])
async def test_only_edges_speak_the_edge_protocol(
    services: Platform, method: MethodDescriptor, role: str
) -> None:
    token = services.token((role,), org_id="acme", subject="edge-1")

    assert await call(services.deploy_target, token, method) == grpc.StatusCode.PERMISSION_DENIED


async def _code(target: str, token: str, rpc: str, request: object, edge: bool = False) -> grpc.StatusCode:
    async with channel(target, token) as ch:
        stub = deploy_pb2_grpc.EdgeServiceStub(ch) if edge else deploy_pb2_grpc.DeployServiceStub(ch)
        try:
            await getattr(stub, rpc)(request)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_an_org_admin_reads_its_own_fleet_only(services: Platform, fresh_org: str) -> None:
    own = services.token(("org_admin",), org_id=fresh_org, subject="ada")
    target = services.deploy_target
    mine = deploy_pb2.ListEdgeServersRequest(org_id=fresh_org)
    theirs = deploy_pb2.ListEdgeServersRequest(org_id="org-someone-else")
    assert await _code(target, own, "ListEdgeServers", mine) == grpc.StatusCode.OK
    assert await _code(target, own, "ListEdgeServers", theirs) == grpc.StatusCode.PERMISSION_DENIED
    assert await _code(target, own, "GetMobileStatus", deploy_pb2.MobileStatusRequest(org_id=fresh_org)) in (
        grpc.StatusCode.OK,
    )
    other = deploy_pb2.MobileStatusRequest(org_id="org-someone-else")
    assert await _code(target, own, "GetMobileStatus", other) == grpc.StatusCode.PERMISSION_DENIED


async def test_an_edge_registers_only_as_itself_and_with_sane_facts(
    services: Platform, fresh_org: str
) -> None:
    token = services.token(("edge",), org_id=fresh_org, subject="edge-auth-1")
    target = services.deploy_target
    someone_else = deploy_pb2.RegisterEdgeRequest(
        server_id="edge-auth-2", platform="linux/amd64", edge_version="1.0.0"
    )
    assert (
        await _code(target, token, "Register", someone_else, edge=True) == grpc.StatusCode.PERMISSION_DENIED
    )
    huge = deploy_pb2.RegisterEdgeRequest(
        server_id="edge-auth-1", platform="x" * 100_000, edge_version="1.0.0", environment="production"
    )
    assert await _code(target, token, "Register", huge, edge=True) == grpc.StatusCode.INVALID_ARGUMENT
    not_semver = deploy_pb2.RegisterEdgeRequest(
        server_id="edge-auth-1", platform="linux/amd64", edge_version="new"
    )
    assert await _code(target, token, "Register", not_semver, edge=True) == grpc.StatusCode.INVALID_ARGUMENT
    no_org = services.token(("edge",), org_id=None, subject="edge-auth-1")
    fine = deploy_pb2.RegisterEdgeRequest(
        server_id="edge-auth-1", platform="linux/amd64", edge_version="1.0.0"
    )
    assert await _code(target, no_org, "Register", fine, edge=True) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _code(target, token, "Register", fine, edge=True) == grpc.StatusCode.OK


async def test_oversized_or_malformed_rollouts_are_refused_saying_what_to_fix(services: Platform) -> None:
    token = services.token()
    target = services.deploy_target
    too_many = deploy_pb2.StartRolloutRequest(version_id="v", server_ids=[f"s{i}" for i in range(20_000)])
    assert await _code(target, token, "StartRollout", too_many) == grpc.StatusCode.INVALID_ARGUMENT
    bad_id = deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["../etc/passwd"])
    assert await _code(target, token, "StartRollout", bad_id) == grpc.StatusCode.INVALID_ARGUMENT
    both = deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["a"], all_servers=True)
    assert await _code(target, token, "StartRollout", both) == grpc.StatusCode.INVALID_ARGUMENT
    bad_threshold = deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["a"], failure_threshold=1.5)
    assert await _code(target, token, "StartRollout", bad_threshold) == grpc.StatusCode.INVALID_ARGUMENT
    unknown = deploy_pb2.StartRolloutRequest(version_id="no-such-version", server_ids=["a"])
    assert await _code(target, token, "StartRollout", unknown) == grpc.StatusCode.NOT_FOUND
