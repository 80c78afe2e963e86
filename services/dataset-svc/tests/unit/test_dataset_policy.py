"""dataset-svc's access policy names every RPC it serves, with request fields that exist."""

from __future__ import annotations

from modelyard_dataset.bootstrap import SERVICES
from modelyard_dataset.policy import DATASET_POLICY
from modelyard_grpc import Role

_SERVICE = "/modelyard.v1.DatasetService/"
_VERSION_READS = ("GetVersion", "GetManifest", "DownloadManifest", "DownloadSamples")


def test_every_served_rpc_has_a_rule_and_every_rule_a_served_rpc() -> None:
    assert DATASET_POLICY.coverage_problems(SERVICES) == []


def test_uploads_labels_reviews_and_publishing_are_for_super_admins_only() -> None:
    for method in ("CreateDataset", "UploadSamples", "LabelSamples", "ReviewSample", "PublishVersion"):
        rule = DATASET_POLICY.rule_for(_SERVICE + method)
        assert rule is not None
        assert rule.allowed_roles == {Role.SUPER_ADMIN}, method


def test_trainers_read_versions_but_nothing_else() -> None:
    readable = {
        m
        for m in (*_VERSION_READS, "GetDataset", "ListSamples", "GetSample")
        if Role.TRAINER in DATASET_POLICY.rule_for(_SERVICE + m).allowed_roles  # type: ignore[union-attr]
    }
    assert readable == set(_VERSION_READS)


def test_the_streamed_manifest_is_readable_by_exactly_whom_the_manifest_is() -> None:
    whole, streamed = (DATASET_POLICY.rule_for(_SERVICE + m) for m in ("GetManifest", "DownloadManifest"))
    assert streamed is not None
    assert whole is not None
    assert streamed.allowed_roles == whole.allowed_roles
