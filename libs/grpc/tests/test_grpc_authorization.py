"""The auth interceptor on a real grpc.aio server: the access matrix over a small policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_support import (
    EchoJobService,
    EchoTrainerService,
    MintToken,
    seeded_store,
    status_of,
)

from modelyard.v1 import events_pb2, events_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from modelyard_events.domain_errors import IllegalTransition
from modelyard_grpc import (
    EVENT_LOG_RULES,
    AccessPolicy,
    AuthInterceptor,
    EventLogServicer,
    Principal,
    Role,
    acting_as,
    channel,
    command,
    current_principal,
    mint_token,
    read,
    serving,
)
from modelyard_grpc.testing import OTHER_ISSUER, verifier_for

POLICY = AccessPolicy(
    {
        **EVENT_LOG_RULES,
        "/modelyard.v1.JobService/ListJobs": read(Role.ORG_ADMIN, Role.AUDITOR, org_field="org_id"),
        "/modelyard.v1.JobService/WatchJob": read(Role.AUDITOR, Role.ORG_ADMIN, scoped_in_servicer=True),
        "/modelyard.v1.JobService/CancelJob": command(),
        "/modelyard.v1.TrainerService/Heartbeat": command(Role.TRAINER, subject_field="trainer_id"),
        # GetJob is served but has no rule: refused by default.
    }
)
PLANS = {"org-1": "enterprise", "org-pro": "professional"}
READ_EVENTS = "/modelyard.v1.EventLog/ReadEvents"


@pytest.fixture(scope="module")
async def target() -> AsyncIterator[str]:
    store = await seeded_store()
    registrations = [
        (events_pb2_grpc.add_EventLogServicer_to_server, EventLogServicer(store)),
        (jobs_pb2_grpc.add_JobServiceServicer_to_server, EchoJobService(failure=None)),
        (jobs_pb2_grpc.add_TrainerServiceServicer_to_server, EchoTrainerService()),
    ]
    names = ["modelyard.v1.EventLog", "modelyard.v1.JobService", "modelyard.v1.TrainerService"]
    auth = AuthInterceptor(verifier_for(), POLICY, plan_of=PLANS.__getitem__)
    async with serving(registrations, service_names=names, interceptors=[auth], grace_s=0) as server:
        yield f"127.0.0.1:{server.port}"


async def _read_events(target: str, token: str | None, metadata: tuple[tuple[str, str], ...] = ()) -> int:
    async with channel(target, token) as ch:
        request = events_pb2.ReadEventsRequest(limit=5)
        response = await events_pb2_grpc.EventLogStub(ch).ReadEvents(request, metadata=metadata)
        return len(response.events)


async def _refusal(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return status_of(refused.value)


class TestAuthentication:
    async def test_health_needs_no_token(self, target: str) -> None:
        async with channel(target) as ch:
            response = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
        assert response.status == health_pb2.HealthCheckResponse.SERVING

    async def test_reflection_needs_no_token(self, target: str) -> None:
        async with channel(target) as ch:
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            responses = [r async for r in stub.ServerReflectionInfo(iter([request]))]
        names = {s.name for s in responses[0].list_services_response.service}
        assert {"modelyard.v1.JobService", "grpc.health.v1.Health"} <= names

    async def test_a_call_without_a_token_is_unauthenticated(self, target: str) -> None:
        code, details = await _refusal(_read_events(target, None))
        assert (code, details.split(":")[0]) == (grpc.StatusCode.UNAUTHENTICATED, "missing token")

    async def test_an_expired_token_is_unauthenticated(self, target: str, token: MintToken) -> None:
        code, details = await _refusal(_read_events(target, token("a", None, ["auditor"], ttl_s=-60)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert details.startswith("expired token")

    async def test_a_token_signed_elsewhere_is_unauthenticated(self, target: str) -> None:
        forged = mint_token(OTHER_ISSUER, "a", None, ["super_admin"], ttl_s=60)
        code, details = await _refusal(_read_events(target, forged))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert details.startswith("bad_signature token")

    async def test_another_authorization_scheme_is_unauthenticated(self, target: str) -> None:
        code, details = await _refusal(_read_events(target, None, (("authorization", "Basic dTpw"),)))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert details.startswith("malformed token")


class TestAuthorization:
    @pytest.mark.parametrize("roles", [["auditor"], ["super_admin"], ["edge", "auditor"]])
    async def test_roles_named_by_the_rule_may_call(
        self, target: str, token: MintToken, roles: list[str]
    ) -> None:
        assert await _read_events(target, token("reader", "org-1", roles)) == 5

    @pytest.mark.parametrize("roles", [["edge"], ["trainer"], ["org_admin"], []])
    async def test_other_roles_are_denied_with_the_rpc_and_allowed_roles_named(
        self, target: str, token: MintToken, roles: list[str]
    ) -> None:
        code, details = await _refusal(_read_events(target, token("x", "org-1", roles)))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert details.startswith(f"{READ_EVENTS} may be called by auditor, super_admin")

    async def test_an_rpc_without_a_rule_is_denied_even_to_super_admin(
        self, target: str, token: MintToken
    ) -> None:
        async with channel(target, token("root", None, ["super_admin"])) as ch:
            code, details = await _refusal(
                jobs_pb2_grpc.JobServiceStub(ch).GetJob(jobs_pb2.JobRef(job_id="j"))
            )
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "not in the access policy" in details

    async def test_org_admin_may_not_command(self, target: str, token: MintToken) -> None:
        async with channel(target, token("oa", "org-1", ["org_admin"])) as ch:
            call = jobs_pb2_grpc.JobServiceStub(ch).CancelJob(jobs_pb2.JobCommand(job_id="j"))
            code, _ = await _refusal(call)
        assert code == grpc.StatusCode.PERMISSION_DENIED

    async def test_the_servicer_sees_the_callers_principal(self, target: str, token: MintToken) -> None:
        async with channel(target, token("root", None, ["super_admin"])) as ch:
            job = await jobs_pb2_grpc.JobServiceStub(ch).CancelJob(jobs_pb2.JobCommand(job_id="j"))
        assert job.created_by == "root"


class TestConfinement:
    async def _list(self, target: str, token: str, org_id: str) -> str:
        async with channel(target, token) as ch:
            response = await jobs_pb2_grpc.JobServiceStub(ch).ListJobs(
                jobs_pb2.ListJobsRequest(org_id=org_id)
            )
        return response.next_page_token

    async def test_org_admin_reads_its_own_organization(self, target: str, token: MintToken) -> None:
        assert await self._list(target, token("oa", "org-1", ["org_admin"]), "org-1") == "oa|org-1"

    async def test_org_admin_without_an_organization_filter_gets_its_own(
        self, target: str, token: MintToken
    ) -> None:
        assert await self._list(target, token("oa", "org-1", ["org_admin"]), "") == "oa|org-1"

    async def test_org_admin_may_not_read_another_organization(self, target: str, token: MintToken) -> None:
        code, details = await _refusal(self._list(target, token("oa", "org-1", ["org_admin"]), "org-2"))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "org_id='org-2'" in details

    async def test_org_admin_of_a_professional_organization_is_denied(
        self, target: str, token: MintToken
    ) -> None:
        code, details = await _refusal(self._list(target, token("oa", "org-pro", ["org_admin"]), "org-pro"))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "Enterprise plan" in details

    async def test_auditor_reads_any_organization(self, target: str, token: MintToken) -> None:
        assert await self._list(target, token("au", None, ["auditor"]), "org-2") == "au|org-2"

    @pytest.mark.parametrize(
        ("trainer_id", "allowed"),
        [("t-1", True), ("", True), ("t-2", False), ("t-1/pod-a", True), ("t-1/", False), ("t-10", False)],
    )
    async def test_a_trainer_heartbeats_only_as_itself(
        self, target: str, token: MintToken, trainer_id: str, allowed: bool
    ) -> None:
        async with channel(target, token("t-1", None, ["trainer"])) as ch:
            call = jobs_pb2_grpc.TrainerServiceStub(ch).Heartbeat(
                jobs_pb2.HeartbeatRequest(trainer_id=trainer_id)
            )
            if allowed:
                assert (await call).lease_ttl_s == 30.0
            else:
                assert (await _refusal(call))[0] == grpc.StatusCode.PERMISSION_DENIED


class TestStreaming:
    async def test_a_response_stream_is_refused_without_a_token(self, target: str) -> None:
        async with channel(target) as ch:
            call = jobs_pb2_grpc.JobServiceStub(ch).WatchJob(jobs_pb2.WatchJobRequest(job_id="j"))
            with pytest.raises(aio.AioRpcError) as refused:
                _ = [update async for update in call]
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_a_response_stream_runs_as_the_caller(self, target: str, token: MintToken) -> None:
        async with channel(target, token("au", None, ["auditor"])) as ch:
            call = jobs_pb2_grpc.JobServiceStub(ch).WatchJob(jobs_pb2.WatchJobRequest(job_id="j"))
            updates = [update async for update in call]
        assert [(u.job.created_by, u.job.epochs_done) for u in updates] == [("au", 1), ("au", 2)]

    async def test_a_response_stream_is_denied_to_other_roles(self, target: str, token: MintToken) -> None:
        async with channel(target, token("e", "org-1", ["edge"])) as ch:
            call = jobs_pb2_grpc.JobServiceStub(ch).WatchJob(jobs_pb2.WatchJobRequest(job_id="j"))
            with pytest.raises(aio.AioRpcError) as refused:
                _ = [update async for update in call]
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


class TestComposition:
    async def test_domain_errors_of_a_guarded_servicer_are_mapped(self, token: MintToken) -> None:
        servicer = EchoJobService(failure=IllegalTransition("job j is completed"))
        auth = AuthInterceptor(verifier_for(), POLICY)
        registration = [(jobs_pb2_grpc.add_JobServiceServicer_to_server, servicer)]
        async with (
            serving(registration, service_names=[], interceptors=[auth], grace_s=0) as server,
            channel(f"127.0.0.1:{server.port}", token("root", None, ["super_admin"])) as ch,
        ):
            call = jobs_pb2_grpc.JobServiceStub(ch).CancelJob(jobs_pb2.JobCommand(job_id="j"))
            assert await _refusal(call) == (grpc.StatusCode.FAILED_PRECONDITION, "job j is completed")

    def test_outside_an_rpc_there_is_no_principal(self) -> None:
        with pytest.raises(LookupError):
            current_principal()

    def test_unit_tests_can_act_as_a_principal(self) -> None:
        with acting_as(Principal("u", "org-1", frozenset({Role.AUDITOR}))):
            assert current_principal().subject == "u"
        with pytest.raises(LookupError):
            current_principal()
