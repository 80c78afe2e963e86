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
