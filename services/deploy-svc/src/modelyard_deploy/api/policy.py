"""Who may call which deploy-svc RPC (DESIGN §6); checked by a test against the served services."""

from __future__ import annotations

from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, Role, command, read
from modelyard_grpc.projection_audit import PROJECTION_AUDIT_RULES

_DEPLOY = "/modelyard.v1.DeployService/"
_EDGE = "/modelyard.v1.EdgeService/"
_READERS = (Role.ORG_ADMIN, Role.AUDITOR)
_COMMANDS = (
    "StartRollout",
    "CancelRollout",
    "RollbackRollout",
    "CancelDeployment",
    "RetryDeployment",
)

DEPLOY_POLICY = AccessPolicy(
    {
        # Operators' commands: super_admin only.
        **{_DEPLOY + m: command() for m in _COMMANDS},
        # Reads: org_admin within its organization (the request's org_id, or checked by the
        # servicer after loading the rollout/deployment), auditors everywhere.
        _DEPLOY + "GetRollout": read(*_READERS, scoped_in_servicer=True),
        _DEPLOY + "ListRollouts": read(*_READERS, org_field="org_id"),
        _DEPLOY + "GetDeployment": read(*_READERS, scoped_in_servicer=True),
        _DEPLOY + "ListDeployments": read(*_READERS, org_field="org_id"),
        _DEPLOY + "ListEdgeServers": read(*_READERS, org_field="org_id"),
        _DEPLOY + "GetEdgeServer": read(*_READERS, org_field="org_id"),
        _DEPLOY + "GetMobileStatus": read(*_READERS, org_field="org_id"),
        _DEPLOY + "ReadEvents": read(Role.AUDITOR),
        # Edge agents act as themselves: an edge token's subject is its server id and its org is the
        # server's organization (the servicer refuses a principal without one).
        **{
            _EDGE + m: command(Role.EDGE, subject_field="server_id")
            for m in ("Register", "Heartbeat", "ReportProgress")
        },
        _EDGE + "StreamAssignments": read(Role.EDGE, subject_field="server_id"),
        **EVENT_LOG_RULES,
        **PROJECTION_AUDIT_RULES,
    }
)
