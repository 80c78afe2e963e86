"""Who may call which dataset-svc RPC (DESIGN §6); checked by a test against the served service."""

from __future__ import annotations

from modelyard_grpc import EVENT_LOG_RULES, AccessPolicy, Principal, Role, command, read
from modelyard_grpc.policy import roles_refusal
from modelyard_grpc.projection_audit import PROJECTION_AUDIT_RULES

_DATASETS = "/modelyard.v1.DatasetService/"
_READERS = (Role.ORG_ADMIN, Role.AUDITOR)
_COMMANDS = (
    "CreateDataset",
    "UploadSamples",
    "LabelSamples",
    "ReviewSample",
    "PublishVersion",
    # The lifecycle: operators (super_admin) only; org_admin and auditor change nothing.
    "UpdateDataset",
    "ArchiveDataset",
    "UnarchiveDataset",
    "DeleteSample",
    "DeleteDataset",
)

DATASET_POLICY = AccessPolicy(
    {
        # Commands: super_admin only (annotators and reviewers are super_admins; the subject is recorded).
        **{_DATASETS + m: command() for m in _COMMANDS},
        # Reads: org_admin within its own organization (Enterprise plan), auditors everywhere.
        _DATASETS + "ListDatasets": read(*_READERS, org_field="org_id"),
        **{
            _DATASETS + m: read(*_READERS, scoped_in_servicer=True)
            for m in ("GetDataset", "GetSample", "ListSamples", "GetReadiness")
        },
        # Trainers read the versions they train on (any organization's: the fleet is shared).
        **{
            _DATASETS + m: read(*_READERS, Role.TRAINER, scoped_in_servicer=True)
            for m in ("GetVersion", "GetManifest", "DownloadManifest", "DownloadSamples")
        },
        _DATASETS + "ReadEvents": read(Role.AUDITOR),
        **EVENT_LOG_RULES,
        **PROJECTION_AUDIT_RULES,
    }
)


_DOWNLOAD = _DATASETS + "DownloadSamples"


def may_download_files(principal: Principal) -> bool:
    """Whether the caller's roles may download a dataset's files (DownloadSamples' rule): a sample's
    file URL is shown only to them. The organization is checked by the read that shows it."""
    return roles_refusal(_DOWNLOAD, DATASET_POLICY.rule_for(_DOWNLOAD), principal) is None
