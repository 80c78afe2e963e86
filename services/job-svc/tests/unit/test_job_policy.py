"""job-svc's access policy names every RPC it serves, with request fields that exist."""

from __future__ import annotations

from modelyard_grpc import Role
from modelyard_job.bootstrap import SERVICES
from modelyard_job.policy import JOB_POLICY


def test_every_served_rpc_has_a_rule_and_every_rule_a_served_rpc() -> None:
    assert JOB_POLICY.coverage_problems(SERVICES) == []


def test_commands_are_for_super_admins_only() -> None:
    rule = JOB_POLICY.rule_for("/modelyard.v1.JobService/CancelJob")

    assert rule is not None
    assert rule.allowed_roles == {Role.SUPER_ADMIN}


def test_trainers_may_only_heartbeat_as_themselves() -> None:
    rule = JOB_POLICY.rule_for("/modelyard.v1.TrainerService/Heartbeat")

    assert rule is not None
    assert rule.subject_field == "trainer_id"
    assert JOB_POLICY.rule_for("/modelyard.v1.JobService/GetJob").allowed_roles.isdisjoint({Role.TRAINER})  # type: ignore[union-attr]


def test_whose_a_dispatch_is_is_read_by_service_tokens_not_by_trainers() -> None:
    rule = JOB_POLICY.rule_for("/modelyard.v1.TrainerService/GetDispatch")

    assert rule is not None
    assert rule.access == "read"
    assert rule.allowed_roles == {Role.SUPER_ADMIN, Role.AUDITOR}  # trainer-svc's own token: auditor


def test_the_audit_views_are_reads_confined_to_the_org_admins_own_organization() -> None:
    for method in ("SearchAudit", "FollowCorrelation", "GetLineage"):
        rule = JOB_POLICY.rule_for(f"/modelyard.v1.AuditService/{method}")

        assert rule is not None
        assert rule.access == "read"  # no role changes anything through the audit service
        assert rule.allowed_roles == {Role.SUPER_ADMIN, Role.ORG_ADMIN, Role.AUDITOR}
        assert rule.org_field == "org_id"
