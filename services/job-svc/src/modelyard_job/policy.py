"""Who may call which job-svc RPC (DESIGN §6); checked by a test against the served services."""

from __future__ import annotations

from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, Role, command, read
from modelyard_grpc.projection_audit import PROJECTION_AUDIT_RULES

_JOBS = "/modelyard.v1.JobService/"
_QUERIES = "/modelyard.v1.QueryService/"
_AUDIT = "/modelyard.v1.AuditService/"
_READERS = (Role.ORG_ADMIN, Role.AUDITOR)

JOB_POLICY = AccessPolicy(
    {
        # Commands: super_admin only.
        **{_JOBS + m: command() for m in ("CreateJob", "CancelJob", "PauseJob", "ResumeJob", "RetryJob")},
        _JOBS + "SetPriority": command(),
        # Reads: org_admin within its own organization (Enterprise plan), auditors everywhere.
        _JOBS + "GetJob": read(*_READERS, scoped_in_servicer=True),
        _JOBS + "WatchJob": read(*_READERS, scoped_in_servicer=True),
        _JOBS + "ListJobs": read(*_READERS, org_field="org_id"),
        _JOBS + "ReadEvents": read(Role.AUDITOR),
        _QUERIES + "GetQueue": read(*_READERS, org_field="org_id"),
        _QUERIES + "ListActiveJobs": read(*_READERS, org_field="org_id"),
        # An estimate creates nothing: the readers of the organization's jobs may ask (its past runs).
        _QUERIES + "EstimateJob": read(*_READERS, org_field="org_id"),
        _QUERIES + "GetMetricsHistory": read(*_READERS, scoped_in_servicer=True),
        _QUERIES + "GetJobEvents": read(*_READERS, scoped_in_servicer=True),
        _QUERIES + "GetJobLogs": read(*_READERS, scoped_in_servicer=True),
        _QUERIES + "FollowJobLogs": read(*_READERS, scoped_in_servicer=True),
        # The trainer fleet spans organizations: not an org_admin's view.
        _QUERIES + "ListTrainers": read(Role.AUDITOR),
        # Trainer workers heartbeat as themselves only.
        "/modelyard.v1.TrainerService/Heartbeat": command(Role.TRAINER, subject_field="trainer_id"),
        # trainer-svc (its own auditor token) asks whose a dispatch is before its first report is stored.
        "/modelyard.v1.TrainerService/GetDispatch": read(Role.AUDITOR),
        # The audit view and lineage (reads only; there is no command in AuditService): auditors across
        # organizations, org_admin confined to its own through the request's org_id (an empty one is
        # filled with its own, another is refused with PERMISSION_DENIED).
        **{
            _AUDIT + m: read(*_READERS, org_field="org_id")
            for m in ("SearchAudit", "FollowCorrelation", "GetLineage")
        },
        # Usage next to the plan's limits: the same readers, the same confinement (there is no
        # operator role: super_admin is the operator, and reads everything).
        _AUDIT + "GetUsage": read(*_READERS, org_field="org_id"),
        **EVENT_LOG_RULES,
        **PROJECTION_AUDIT_RULES,
    }
)
