"""The access policy as data: rule validation, coverage against the contracts, role checks."""

from __future__ import annotations

import pytest

from modelyard.v1 import events_pb2, jobs_pb2
from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, Principal, Role, command, read
from modelyard_grpc.policy import is_public, roles_refusal, scope_refusal

EVENT_LOG = events_pb2.DESCRIPTOR.services_by_name["EventLog"]
TRAINERS = jobs_pb2.DESCRIPTOR.services_by_name["TrainerService"]


def _principal(*roles: Role, org_id: str | None = "org-1", subject: str = "someone") -> Principal:
    return Principal(subject, org_id, frozenset(roles))


class TestRules:
    def test_read_only_roles_cannot_be_granted_a_command(self) -> None:
        with pytest.raises(ValueError, match="read-only"):
            command(Role.AUDITOR)

    def test_a_rule_granting_org_admin_must_say_how_the_organization_is_confined(self) -> None:
        with pytest.raises(ValueError, match="org_field"):
            read(Role.ORG_ADMIN)
        assert read(Role.ORG_ADMIN, org_field="org_id").org_field == "org_id"
        assert read(Role.ORG_ADMIN, scoped_in_servicer=True).scoped_in_servicer

    def test_a_rule_granting_edge_or_trainer_must_say_how_the_caller_is_confined(self) -> None:
        with pytest.raises(ValueError, match="subject_field"):
            command(Role.TRAINER)
        with pytest.raises(ValueError, match="subject_field"):
            read(Role.EDGE)

    def test_method_names_must_be_full(self) -> None:
        with pytest.raises(ValueError, match="full method name"):
            AccessPolicy({"JobService/GetJob": read()})

    def test_health_and_reflection_are_public_and_nothing_else_is(self) -> None:
        assert is_public("/grpc.health.v1.Health/Check")
        assert is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        assert not is_public("/modelyard.v1.EventLog/ReadEvents")
        assert not is_public("/grpc.health.v1.Health")


class TestCoverage:
    def test_a_complete_policy_has_no_problems(self) -> None:
        policy = AccessPolicy(
            {
                **EVENT_LOG_RULES,
                "/modelyard.v1.TrainerService/Heartbeat": command(Role.TRAINER, subject_field="trainer_id"),
                "/modelyard.v1.TrainerService/GetDispatch": read(Role.AUDITOR),
            }
        )
        assert policy.coverage_problems([EVENT_LOG, TRAINERS]) == []

    def test_missing_rules_typos_and_wrong_fields_are_reported(self) -> None:
        policy = AccessPolicy(
            {
                "/modelyard.v1.TrainerService/Heartbeat": command(Role.TRAINER, subject_field="trainer"),
                "/modelyard.v1.TrainerService/GetDispatch": read(Role.AUDITOR),
                "/modelyard.v1.EventLog/ReadEvent": read(Role.AUDITOR),
            }
        )
        assert policy.coverage_problems([EVENT_LOG, TRAINERS]) == [
            "/modelyard.v1.EventLog/ReadEvents has no rule and is refused to everyone",
            "/modelyard.v1.TrainerService/Heartbeat: HeartbeatRequest.trainer is not a string field",
            "/modelyard.v1.EventLog/ReadEvent has a rule but is not served",
        ]


class TestRoleChecks:
    def test_super_admin_may_call_every_rpc_in_the_policy(self) -> None:
        assert roles_refusal("/a.B/C", command(), _principal(Role.SUPER_ADMIN)) is None

    def test_no_one_may_call_an_rpc_outside_the_policy(self) -> None:
        refusal = roles_refusal("/a.B/C", None, _principal(Role.SUPER_ADMIN))
        assert refusal is not None
        assert "deny by default" in refusal

    def test_a_refusal_names_the_rpc_and_who_may_call_it(self) -> None:
        refusal = roles_refusal("/a.B/C", read(Role.AUDITOR), _principal(Role.EDGE))
        assert refusal == "/a.B/C may be called by auditor, super_admin; the token's roles are: edge"


class TestScopeChecks:
    async def test_org_admin_needs_the_enterprise_plan(self) -> None:
        rule = read(Role.ORG_ADMIN, org_field="org_id")
        request = jobs_pb2.ListJobsRequest(org_id="org-1")
        refusal = await scope_refusal(rule, _principal(Role.ORG_ADMIN), request, lambda org: "professional")
        assert refusal is not None
        assert "Enterprise plan" in refusal

    async def test_the_plan_lookup_may_be_async(self) -> None:
        async def plan_of(org_id: str) -> str:
            return "Enterprise"

        rule = read(Role.ORG_ADMIN, org_field="org_id")
        request = jobs_pb2.ListJobsRequest(org_id="org-1")
        assert await scope_refusal(rule, _principal(Role.ORG_ADMIN), request, plan_of) is None

    async def test_without_a_plan_lookup_org_admin_is_refused(self) -> None:
        rule = read(Role.ORG_ADMIN, org_field="org_id")
        request = jobs_pb2.ListJobsRequest(org_id="org-1")
        assert await scope_refusal(rule, _principal(Role.ORG_ADMIN), request, None) is not None

    async def test_an_empty_org_field_is_filled_with_the_callers_organization(self) -> None:
        rule = read(Role.ORG_ADMIN, org_field="org_id")
        request = jobs_pb2.ListJobsRequest()
        assert (
            await scope_refusal(rule, _principal(Role.ORG_ADMIN), request, lambda org: "enterprise") is None
        )
        assert request.org_id == "org-1"

    async def test_a_less_confined_role_wins_when_the_caller_has_several(self) -> None:
        rule = read(Role.ORG_ADMIN, Role.AUDITOR, org_field="org_id")
        request = jobs_pb2.ListJobsRequest(org_id="org-2")
        both = _principal(Role.ORG_ADMIN, Role.AUDITOR)
        assert await scope_refusal(rule, both, request, lambda org: "professional") is None
        assert request.org_id == "org-2"
