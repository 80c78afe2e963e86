"""What each event changes in an organization's usage: the enforcing services' own rules."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard_events.schemas.datasets import (
    DatasetStorageCharged,
    DatasetStorageFreed,
    DatasetStorageReleased,
    DatasetStorageSettled,
)
from modelyard_events.schemas.jobs import JobCreated, JobQuotaUsed
from modelyard_events.schemas.registry import ModelApproved, ModelDeprecated, ModelReleased
from modelyard_job.projections.usage_rows import (
    JobCounted,
    ModelActivity,
    StorageTotal,
    left,
    usage_change,
)

NOW = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
SHA = "a" * 64


def _released(version_id: str, environment: str = "production") -> ModelReleased:
    return ModelReleased(
        version_id=version_id, org_id="acme", ai_module="reader", semantic_version="1.0.0",
        environment=environment, released_by="carol", released_at=NOW, release_notes="first",
        artifact_sha256=SHA, artifact_size_bytes=10,
    )  # fmt: skip


def test_a_job_counted_in_the_quota_stream_counts_in_the_month_the_stream_names() -> None:
    used = JobQuotaUsed(org_id="acme", month="2026-03", job_id="j-1", plan="enterprise")
    assert usage_change(used) == JobCounted("acme", "2026-03", "j-1")


def test_creating_a_job_alone_counts_nothing_the_quota_stream_is_what_the_limit_checks() -> None:
    # Evaluation jobs and retries append JobCreated/JobQueued but no JobQuotaUsed: they do not count.
    created = JobCreated(
        job_id="j-1", org_id="acme", name="digits", ai_module="reader", family="image_classifier",
        dataset_uri="dataset://ds-1/1", hyperparameters={}, priority=50, created_by="dev",
    )  # fmt: skip
    assert usage_change(created) is None


def test_every_ledger_event_that_moves_the_total_sets_the_organizations_bytes() -> None:
    charged = DatasetStorageCharged(
        org_id="acme", dataset_id="ds-1", upload_id="u-1", size_bytes=300, total_bytes=1300,
        limit_bytes=10_000, dataset_version=2, charged_at=NOW,
    )  # fmt: skip
    released = DatasetStorageReleased(
        org_id="acme", dataset_id="ds-1", upload_id="u-1", size_bytes=300, total_bytes=1000,
        reason="the upload's samples were never recorded",
    )  # fmt: skip
    freed = DatasetStorageFreed(
        org_id="acme", dataset_id="ds-1", deletion="ds-1:a", size_bytes=400, total_bytes=600
    )
    assert [usage_change(e) for e in (charged, released, freed)] == [
        StorageTotal("acme", 1300),
        StorageTotal("acme", 1000),
        StorageTotal("acme", 600),
    ]
    # Settling a charge keeps the total the charge already set.
    assert usage_change(DatasetStorageSettled(org_id="acme", dataset_id="ds-1", upload_id="u-1")) is None


def test_a_version_is_active_from_its_release_until_it_is_deprecated() -> None:
    deprecated = ModelDeprecated(
        version_id="v-1", org_id="acme", ai_module="reader", semantic_version="1.0.0",
        environments=["production"], deprecated_by="carol", reason="superseded",
    )  # fmt: skip
    assert usage_change(_released("v-1")) == ModelActivity("acme", "reader", "v-1", active=True)
    # A second environment names the same version: the row is keyed by it, so it counts once.
    assert usage_change(_released("v-1", "staging")) == usage_change(_released("v-1"))
    assert usage_change(deprecated) == ModelActivity("acme", "reader", "v-1", active=False)


def test_an_approved_version_is_not_active_yet() -> None:
    approved = ModelApproved.model_construct(version_id="v-1", org_id="acme", ai_module="reader")
    assert usage_change(approved) is None


def test_what_is_left_under_a_limit() -> None:
    assert left(3, 10) == 7
    assert left(12, 10) == 0  # a lowered limit leaves nothing, never a negative figure
    assert left(5, None) is None  # unlimited
