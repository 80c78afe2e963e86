"""The audit row and the lineage change of each event: pure functions of the envelope, no I/O."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from modelyard_events.domain_errors import InvalidArgument
from modelyard_events.envelope import Actor, DomainEvent, EventEnvelope
from modelyard_events.schemas.datasets import (
    AddedSample,
    AnnotationData,
    DatasetVersionPublished,
    ReadinessData,
    SampleApproved,
    SampleLabeled,
    SampleRejected,
    SamplesAdded,
)
from modelyard_events.schemas.deploy import DeploymentCreated
from modelyard_events.schemas.jobs import JobCancelled, JobCreated, ModelInput
from modelyard_events.schemas.registry import ModelApproved, ModelReleased, ModelVersionRegistered
from modelyard_job.audit_api import _offset
from modelyard_job.projections.audit_queries import decode_cursor, encode_cursor, page_size
from modelyard_job.projections.audit_rows import audit_row, reason_of
from modelyard_job.projections.audit_views import source_of
from modelyard_job.projections.lineage_rows import (
    DATASET_VERSION,
    DEPLOYMENT,
    EDGE_SERVER,
    JOB,
    MODEL_VERSION,
    SAMPLE,
    Edge,
    VersionSnapshot,
    lineage_change,
)

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
SHA = "ab" * 32


def envelope(
    event: DomainEvent,
    stream_type: str,
    stream_id: str,
    *,
    org: str | None = "org-a",
    subject: str = "alice",
    position: int = 7,
    data: dict[str, Any] | None = None,
) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        stream_type=stream_type,
        stream_id=stream_id,
        stream_version=1,
        position=position,
        type=event.type_name,
        schema_version=1,
        occurred_at=AT,
        actor=Actor(subject=subject, roles=("super_admin",)),
        org_id=org,
        correlation_id="corr-1",
        causation_id="cause-1",
        data=data if data is not None else {},
        prev_hash="0" * 64,
        hash="1" * 64,
    )


def test_an_audit_row_lifts_who_what_when_why_and_the_correlation() -> None:
    event = JobCancelled(job_id="j-1", attempt=1, reason="wrong dataset")
    env = envelope(
        event, "training_job", "j-1", data={"job_id": "j-1", "attempt": 1, "reason": "wrong dataset"}
    )

    row = audit_row(source_of(env), env)

    assert (row.source, row.position, row.type) == ("job", 7, "JobCancelled")
    assert (row.stream_type, row.stream_id, row.org_id) == ("training_job", "j-1", "org-a")
    assert (row.actor_subject, row.actor_roles) == ("alice", ("super_admin",))
    assert (row.reason, row.correlation_id, row.causation_id) == ("wrong dataset", "corr-1", "cause-1")
    assert row.occurred_at == AT


@pytest.mark.parametrize(
    ("data", "reason"),
    [({"reason": "why"}, "why"), ({}, ""), ({"reason": None}, ""), ({"reason": {"nested": 1}}, "")],
)
def test_only_a_string_reason_is_taken(data: dict[str, Any], reason: str) -> None:
    assert reason_of(data) == reason


@pytest.mark.parametrize(
    ("stream_type", "source"),
    [
        ("sample", "dataset"),
        ("dataset", "dataset"),
        ("training_job", "job"),
        ("training_run", "trainer"),
        ("model_module", "registry"),
        ("deployment", "deploy"),
        ("edge_server", "deploy"),
    ],
)
def test_each_stream_belongs_to_the_service_that_writes_it(stream_type: str, source: str) -> None:
    event = JobCancelled(job_id="j-1", attempt=1)
    assert source_of(envelope(event, stream_type, "x")) == source


def test_an_unknown_stream_of_an_unknown_type_is_refused_not_guessed() -> None:
    env = envelope(JobCancelled(job_id="j", attempt=1), "mystery", "x").model_copy(update={"type": "Nope"})
    with pytest.raises(ValueError, match="mystery"):
        source_of(env)


def test_uploaded_samples_become_nodes_with_their_provenance_and_uploader() -> None:
    sample = AddedSample(
        sample_id="ds-1:abab", filename="cam3.png", sha256=SHA, size_bytes=10, media_type="image/png"
    )
    event = SamplesAdded(dataset_id="ds-1", upload_id="u-1", samples=[sample])

    change = lineage_change(event, envelope(event, "dataset", "ds-1", subject="uploader"))

    (node,) = change.nodes
    assert (node.kind, node.id, node.org_id, node.label) == (SAMPLE, "ds-1:abab", "org-a", "cam3.png")
    assert node.sample is not None
    assert (node.sample.dataset_id, node.sample.sha256, node.sample.size_bytes) == ("ds-1", SHA, 10)
    assert (node.sample.source_camera_id, node.sample.captured_at, node.sample.metadata) == (None, None, None)
    assert [(a.act, a.subject) for a in change.acts] == [("uploaded", "uploader")]


def test_labels_and_reviews_name_the_annotator_and_the_reviewer_and_move_the_review_state() -> None:
    labeled = SampleLabeled(
        sample_id="ds-1:abab", dataset_id="ds-1", annotator="lena", annotation=AnnotationData(class_name="7")
    )
    approved = SampleApproved(
        sample_id="ds-1:abab", dataset_id="ds-1", reviewer="rita", agreement=1.0, quality=1.0
    )
    rejected = SampleRejected(sample_id="ds-1:abab", dataset_id="ds-1", reviewer="rob", reason="blurred")

    changes = [lineage_change(e, envelope(e, "sample", "ds-1:abab")) for e in (labeled, approved, rejected)]

    assert [(a.act, a.subject, a.detail) for c in changes for a in c.acts] == [
        ("labeled", "lena", "class 7"),
        ("reviewed", "rita", "approved"),
        ("reviewed", "rob", "rejected: blurred"),
    ]
    assert [r.state for c in changes for r in c.reviews] == ["labeled", "verified", "rejected"]


def test_a_published_version_snapshots_the_verified_samples_of_its_dataset() -> None:
    event = DatasetVersionPublished(
        dataset_id="ds-1", version=3, org_id="org-a", manifest_sha256=SHA, samples=2, size_bytes=20,
        split_counts={"train": 2}, seed=1, train_fraction=0.8, val_fraction=0.1,
        readiness=ReadinessData(ready=True, checks=[]), published_by="pat",
    )  # fmt: skip

    change = lineage_change(event, envelope(event, "dataset", "ds-1"))

    assert [(n.kind, n.id) for n in change.nodes] == [(DATASET_VERSION, "ds-1/3")]
    assert change.snapshots == [VersionSnapshot("ds-1", "ds-1/3", "org-a")]
    assert [(a.act, a.subject) for a in change.acts] == [("published", "pat")]


def _job(**overrides: Any) -> JobCreated:
    fields: dict[str, Any] = {
        "job_id": "j-1", "org_id": "org-a", "name": "digits", "ai_module": "reader",
        "family": "image_classifier", "dataset_uri": "dataset://ds-1/3", "hyperparameters": {},
        "priority": 50, "created_by": "dev",
    }  # fmt: skip
    return JobCreated(**{**fields, **overrides})


def test_a_job_links_to_its_dataset_version_and_its_base_version() -> None:
    base = ModelInput(
        version_id="mv-0",
        ai_module="reader",
        semantic_version="1.0.0",
        artifact_sha256=SHA,
        artifact_size_bytes=1,
    )
    event = _job(model_input=base)

    change = lineage_change(event, envelope(event, "training_job", "j-1"))

    assert change.edges == [
        Edge(JOB, "j-1", DATASET_VERSION, "ds-1/3", "trained_on", "org-a"),
        Edge(JOB, "j-1", MODEL_VERSION, "mv-0", "fine_tunes", "org-a"),
    ]
    assert [(a.act, a.subject) for a in change.acts] == [("created", "dev")]


def test_a_job_on_a_local_file_has_no_dataset_edge() -> None:
    event = _job(dataset_uri="file:///data/digits.npz")
    assert lineage_change(event, envelope(event, "training_job", "j-1")).edges == []


def test_the_registry_and_deploy_events_link_version_to_job_and_server_to_deployment() -> None:
    registered = ModelVersionRegistered.model_construct(
        version_id="mv-1", org_id="org-a", ai_module="reader", semantic_version="1.1.0",
        training_job_id="j-1", created_by="dev",
    )  # fmt: skip
    approved = ModelApproved.model_construct(version_id="mv-1", approved_by="carol")
    released = ModelReleased.model_construct(
        version_id="mv-1", environment="production", released_by="carol", rollback=False
    )
    deployed = DeploymentCreated.model_construct(
        deployment_id="d-1", org_id="org-a", server_id="edge-1", version_id="mv-1", ai_module="reader",
        semantic_version="1.1.0", kind="deploy", created_by="ops", reason="",
    )  # fmt: skip

    changes = [
        lineage_change(e, envelope(e, "model_module", "reader"))
        for e in (registered, approved, released, deployed)
    ]

    edges = [e for c in changes for e in c.edges]
    assert Edge(MODEL_VERSION, "mv-1", JOB, "j-1", "trained_by", "org-a") in edges
    assert Edge(DEPLOYMENT, "d-1", MODEL_VERSION, "mv-1", "deploys", "org-a") in edges
    assert Edge(EDGE_SERVER, "edge-1", DEPLOYMENT, "d-1", "deployed_to", "org-a") in edges
    acts = [(a.kind, a.act, a.subject) for c in changes for a in c.acts]
    assert acts == [
        (MODEL_VERSION, "created", "dev"),
        (MODEL_VERSION, "approved", "carol"),
        (MODEL_VERSION, "released", "carol"),
        (DEPLOYMENT, "deployed", "ops"),
    ]


def test_events_the_graph_does_not_use_change_nothing() -> None:
    event = JobCancelled(job_id="j-1", attempt=1)
    assert not lineage_change(event, envelope(event, "training_job", "j-1"))


def test_page_tokens_round_trip_and_a_made_up_one_is_refused_saying_what_to_do() -> None:
    cursor = (AT, "deploy", 42)
    assert decode_cursor(encode_cursor(cursor)) == cursor
    assert decode_cursor("") is None
    with pytest.raises(InvalidArgument, match="leave it empty"):
        decode_cursor("not-a-token")
    with pytest.raises(InvalidArgument, match="leave it empty"):
        _offset("-3")
    with pytest.raises(InvalidArgument, match="between 1 and 1000"):
        page_size(5000, 100)
    assert page_size(0, 100) == 100
