"""Who may call which registry-svc RPC (DESIGN §6); checked by a test against the served service."""

from __future__ import annotations

from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, Role, command, read
from modelyard_grpc.projection_audit import PROJECTION_AUDIT_RULES

_REGISTRY = "/modelyard.v1.RegistryService/"
_READERS = (Role.ORG_ADMIN, Role.AUDITOR)
_COMMANDS = (
    "EvaluateVersion",
    "ApproveVersion",
    "RejectVersion",
    "ReleaseVersion",
    "DeprecateVersion",
    "RollbackVersion",
    "RenumberVersion",
)

REGISTRY_POLICY = AccessPolicy(
    {
        # Commands: super_admin only; approval also needs a second pair of eyes (domain rule).
        **{_REGISTRY + m: command() for m in _COMMANDS},
        _REGISTRY + "ListVersions": read(*_READERS, org_field="org_id"),
        # The servicer checks the version's organization (org_admin) after loading it.
        _REGISTRY + "GetVersion": read(*_READERS, scoped_in_servicer=True),
        # Edges: released versions only, for themselves; trainers: any version they evaluate or
        # fine-tune from, for themselves (the servicer checks both after loading the version).
        _REGISTRY + "GetDownloadUrl": read(*_READERS, Role.EDGE, Role.TRAINER, scoped_in_servicer=True),
        _REGISTRY + "ReadEvents": read(Role.AUDITOR),
        **EVENT_LOG_RULES,
        **PROJECTION_AUDIT_RULES,
    }
)
