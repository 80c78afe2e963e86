"""deploy-svc's gRPC surface without I/O: the access policy covers every RPC, requests map to commands."""

from __future__ import annotations

import pytest

from modelyard.v1 import deploy_pb2
from modelyard_deploy.api.convert import health_limits_from_proto, statuses_from_proto
from modelyard_deploy.api.policy import DEPLOY_POLICY
from modelyard_deploy.api.rollout_requests import rollout_request
from modelyard_deploy.bootstrap import SERVICES
from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.schemas.deploy import MAX_ROLLOUT_SERVERS
from modelyard_grpc import Role


def test_the_policy_has_a_rule_for_every_served_rpc_and_no_other() -> None:
    assert DEPLOY_POLICY.coverage_problems(SERVICES) == []


def test_only_edges_and_super_admins_speak_the_edge_protocol_as_their_own_server() -> None:
    for rpc in ("Register", "Heartbeat", "StreamAssignments", "ReportProgress"):
        rule = DEPLOY_POLICY.rule_for(f"/modelyard.v1.EdgeService/{rpc}")
        assert rule is not None
        assert rule.allowed_roles == {Role.EDGE, Role.SUPER_ADMIN}
        assert rule.subject_field == "server_id"


def test_operators_commands_are_for_super_admins_only() -> None:
    for rpc in ("StartRollout", "CancelRollout", "RollbackRollout", "CancelDeployment", "RetryDeployment"):
        rule = DEPLOY_POLICY.rule_for(f"/modelyard.v1.DeployService/{rpc}")
        assert rule is not None
        assert rule.allowed_roles == {Role.SUPER_ADMIN}


def test_a_rollout_request_takes_the_defaults_written_in_the_proto() -> None:
    request = rollout_request(deploy_pb2.StartRolloutRequest(version_id="v1", server_ids=["a", "b"]))

    assert request.wave_sizes is None  # a canary of one, then the rest
    assert (request.failure_threshold, request.deadline_s, request.max_retries) == (0.0, 3600, 3)
    assert request.backoff_base_s == 10.0
    assert request.scheduled_at is None
    assert request.server_ids == ("a", "b")


def test_a_rollout_request_keeps_what_the_operator_set() -> None:
    proto = deploy_pb2.StartRolloutRequest(
        version_id="v1",
        all_servers=True,
        wave_sizes=[2, 5],
        failure_threshold=0.25,
        max_retries=0,
        deadline_s=60,
        backoff_base_s=1.5,
        health=deploy_pb2.HealthLimits(min_agreement=0.9),
    )
    request = rollout_request(proto)

    assert (request.wave_sizes, request.failure_threshold, request.max_retries) == ((2, 5), 0.25, 0)
    assert (request.deadline_s, request.backoff_base_s) == (60, 1.5)
    assert request.health.min_agreement == 0.9
    assert request.health.max_p95_latency_ratio == 2.0  # unset limits keep their defaults


@pytest.mark.parametrize(
    ("proto", "field"),
    [
        (deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["a"], all_servers=True), "server_ids"),
        (deploy_pb2.StartRolloutRequest(version_id="v"), "server_ids"),
        (deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["../etc/passwd"]), "server_ids"),
        (
            deploy_pb2.StartRolloutRequest(
                version_id="v", server_ids=[f"s{i}" for i in range(MAX_ROLLOUT_SERVERS + 1)]
            ),
            "server_ids",
        ),
        (
            deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["a"], failure_threshold=1.5),
            "failure_threshold",
        ),
        (deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["a"], wave_sizes=[1, 0]), "wave_sizes"),
        (deploy_pb2.StartRolloutRequest(version_id="v", server_ids=["a"], deadline_s=0), "deadline_s"),
        (deploy_pb2.StartRolloutRequest(server_ids=["a"]), "version_id"),
    ],
)
def test_a_malformed_rollout_request_is_refused_naming_the_field(
    proto: deploy_pb2.StartRolloutRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rollout_request(proto)

    assert field in refused.value.problems


def test_health_limits_out_of_range_are_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        health_limits_from_proto(deploy_pb2.HealthLimits(min_agreement=2.0))


def test_an_unknown_status_filter_is_refused() -> None:
    assert statuses_from_proto([deploy_pb2.DEPLOYMENT_STATUS_FAILED]) == ["failed"]
    with pytest.raises(InvalidArgument):
        statuses_from_proto([99])
