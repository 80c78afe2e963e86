"""RegistryService × roles (DESIGN §6) and its refusals of bad input, on the real registry-svc."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor

from modelyard.v1 import events_pb2, registry_pb2, registry_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_grpc import channel, mint_token
from modelyard_grpc.testing import OTHER_ISSUER
from tests.integration.job_client import JobClient
from tests.integration.registry_client import RegistryClient
from tests.integration.registry_flow import train_version
from tests.integration.rpc_matrix import call, method_id
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration

SERVICES = [
    registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    events_pb2.DESCRIPTOR.services_by_name["EventLog"],
    events_pb2.DESCRIPTOR.services_by_name["ProjectionAudit"],
]
METHODS = [method for service in SERVICES for method in service.methods]
COMMANDS = [
    m
    for m in METHODS
    if m.name
    in {
        "EvaluateVersion",
        "ApproveVersion",
        "RejectVersion",
        "ReleaseVersion",
        "DeprecateVersion",
        "RollbackVersion",
        "RenumberVersion",
    }
]


@pytest.mark.parametrize("method", METHODS, ids=method_id)
async def test_no_token_an_expired_or_a_forged_one_is_unauthenticated(
    services: Platform, method: MethodDescriptor
) -> None:
    expired = mint_token(services.issuer, "alice", "acme", ["super_admin"], ttl_s=-120)
    forged = mint_token(OTHER_ISSUER, "mallory", None, ["super_admin"], 600)
    for token in (None, expired, forged):
        assert await call(services.registry_target, token, method) == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("method", COMMANDS, ids=method_id)
@pytest.mark.parametrize("role", ["org_admin", "auditor", "edge", "trainer"])
async def test_only_a_super_admin_commands(services: Platform, method: MethodDescriptor, role: str) -> None:
    token = services.token((role,), org_id="acme", subject=f"{role}-1")

    assert await call(services.registry_target, token, method) == grpc.StatusCode.PERMISSION_DENIED


async def _code(target: str, token: str, rpc: str, request: object) -> grpc.StatusCode:
    async with channel(target, token) as ch:
        try:
            await getattr(registry_pb2_grpc.RegistryServiceStub(ch), rpc)(request)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_each_role_reads_what_it_may_and_no_more(
    jobs: JobClient, trainers: Trainers, services: Platform, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-registry-auth")
    async with RegistryClient.connect(services.registry_target, services.token()) as registry:
        version = await train_version(jobs, registry, fresh_org, digits_uri)
    ref = registry_pb2.ModelVersionRef(version_id=version.version_id)
    url = registry_pb2.DownloadUrlRequest(version_id=version.version_id)
    target = services.registry_target

    async def code(
        roles: tuple[str, ...], org: str | None, rpc: str, request: object, subject: str = "x"
    ) -> grpc.StatusCode:
        return await _code(target, services.token(roles, org_id=org, subject=subject), rpc, request)

    own, other = fresh_org, "globex"
    # org_admin: its own organization only (Enterprise plan), and no commands.
    assert await code(("org_admin",), own, "GetVersion", ref) == grpc.StatusCode.OK
    assert (
        await code(("org_admin",), own, "ListVersions", registry_pb2.ListVersionsRequest())
        == grpc.StatusCode.OK
    )
    assert await code(("org_admin",), own, "GetDownloadUrl", url) == grpc.StatusCode.OK
    assert await code(("org_admin",), other, "GetVersion", ref) == grpc.StatusCode.PERMISSION_DENIED
    assert await code(("org_admin",), other, "GetDownloadUrl", url) == grpc.StatusCode.PERMISSION_DENIED
    listing_other = registry_pb2.ListVersionsRequest(org_id=own)
    assert (
        await code(("org_admin",), other, "ListVersions", listing_other) == grpc.StatusCode.PERMISSION_DENIED
    )
    assert await code(("org_admin",), "smallco", "ListVersions", registry_pb2.ListVersionsRequest()) == (
        grpc.StatusCode.PERMISSION_DENIED  # the Professional plan has no org_admin reads
    )
    # auditor: reads everything, including the log.
    assert await code(("auditor",), None, "GetVersion", ref) == grpc.StatusCode.OK
    assert await code(("auditor",), None, "ListVersions", listing_other) == grpc.StatusCode.OK
    read = events_pb2.ReadEventsRequest(after_position=0, limit=10)
    assert await code(("auditor",), None, "ReadEvents", read) == grpc.StatusCode.OK
    assert await code(("org_admin",), own, "ReadEvents", read) == grpc.StatusCode.PERMISSION_DENIED
    # edge: released versions only, and nothing else; the version is a draft.
    assert await code(("edge",), own, "GetDownloadUrl", url, "edge-1") == grpc.StatusCode.PERMISSION_DENIED
    assert await code(("edge",), own, "GetVersion", ref, "edge-1") == grpc.StatusCode.PERMISSION_DENIED
    assert await code(("edge",), own, "ListVersions", listing_other) == grpc.StatusCode.PERMISSION_DENIED
    # trainer: a URL for itself (it evaluates drafts), never for someone else.
    assert await code(("trainer",), None, "GetDownloadUrl", url, "t-1") == grpc.StatusCode.OK
    for_other = registry_pb2.DownloadUrlRequest(version_id=version.version_id, audience="t-2")
    assert (
        await code(("trainer",), None, "GetDownloadUrl", for_other, "t-1")
        == grpc.StatusCode.PERMISSION_DENIED
    )


@pytest.mark.parametrize(
    ("rpc", "request_", "status", "says"),
    [
        (
            "GetVersion",
            registry_pb2.ModelVersionRef(version_id="no-such-version"),
            "NOT_FOUND",
            "does not exist",
        ),
        (
            "ApproveVersion",
            registry_pb2.VersionCommand(version_id="no-such-version"),
            "NOT_FOUND",
            "does not exist",
        ),
        (
            "GetVersion",
            registry_pb2.ModelVersionRef(version_id=""),
            "INVALID_ARGUMENT",
            "name the model version",
        ),
        ("GetVersion", registry_pb2.ModelVersionRef(version_id="v" * 300), "INVALID_ARGUMENT", "version_id"),
        (
            "ListVersions",
            registry_pb2.ListVersionsRequest(page_token="abc"),
            "INVALID_ARGUMENT",
            "page token",
        ),
        (
            "ListVersions",
            registry_pb2.ListVersionsRequest(statuses=[42]),
            "INVALID_ARGUMENT",
            "unknown model status",
        ),
    ],
    ids=["unknown", "unknown-command", "empty-id", "oversized-id", "bad-page-token", "bad-status"],
)
async def test_bad_input_gets_the_right_status_and_says_what_to_fix(
    services: Platform, rpc: str, request_: object, status: str, says: str
) -> None:
    async with channel(services.registry_target, services.token()) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await getattr(registry_pb2_grpc.RegistryServiceStub(ch), rpc)(request_)
    assert refused.value.code() == getattr(grpc.StatusCode, status)
    assert says in (refused.value.details() or "")


async def test_commands_without_a_reason_or_with_a_malformed_number_are_invalid(
    jobs: JobClient, trainers: Trainers, services: Platform, fresh_org: str, digits_uri: str
) -> None:
    await trainers.start("t-registry-input")
    async with RegistryClient.connect(services.registry_target, services.token()) as registry:
        version = await train_version(jobs, registry, fresh_org, digits_uri)
        vid = version.version_id
        cases = [
            (
                "RenumberVersion",
                registry_pb2.RenumberRequest(version_id=vid, semantic_version="2.0", reason="r"),
            ),
            ("RenumberVersion", registry_pb2.RenumberRequest(version_id=vid, semantic_version="2.0.0")),
            (
                "RenumberVersion",
                registry_pb2.RenumberRequest(version_id=vid, semantic_version="0.9.0", reason="r"),
            ),
            ("EvaluateVersion", registry_pb2.EvaluateRequest(version_id=vid, split="train")),
            ("GetDownloadUrl", registry_pb2.DownloadUrlRequest(version_id=vid, ttl_s=100_000)),
        ]
        for rpc, request in cases:
            assert await _code(services.registry_target, services.token(), rpc, request) == (
                grpc.StatusCode.INVALID_ARGUMENT
            ), rpc
        renumbered = await registry.stub.RenumberVersion(
            registry_pb2.RenumberRequest(version_id=vid, semantic_version="2.0.0", reason="new product line")
        )
    assert renumbered.semantic_version == "2.0.0"
