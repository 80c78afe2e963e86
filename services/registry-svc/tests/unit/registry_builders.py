"""Building blocks for the registry's domain tests: registrations, reports, a fake signer."""

from __future__ import annotations

from datetime import UTC, datetime

from modelyard_events.schemas.registry import (
    ClassScores,
    EvaluationReport,
    ModelConfig,
    SignedArtifactManifest,
)
from modelyard_registry.domain.module import ModelModule, Registration
from modelyard_registry.domain.version_state import VersionState

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ORG, MODULE = "acme", "digits"


def config(classes: list[str] | None = None, schema: str = "a" * 64) -> ModelConfig:
    """An image classifier's config."""
    return ModelConfig(
        family="image_classifier",
        input_shape=[1, 8, 8],
        class_names=classes if classes is not None else [str(n) for n in range(10)],
        input_schema_sha256=schema,
        preprocessing="image",
        config_uri="registry-blob:sha256:" + "c" * 64,
        config_sha256="c" * 64,
    )


def registration(
    job: str = "job-1",
    dataset: str = "dataset://acme/ds-1/versions/1",
    created_by: str = "alice",
    **changes: object,
) -> Registration:
    """A completed training job, ready to register."""
    values: dict[str, object] = {
        "version_id": f"v-{job}",
        "org_id": ORG,
        "ai_module": MODULE,
        "name": f"digits from {job}",
        "description": "",
        "training_job_id": job,
        "base_version_id": None,
        "created_by": created_by,
        "artifact_uri": "registry-blob:sha256:" + "a" * 64,
        "artifact_sha256": "a" * 64,
        "artifact_size_bytes": 1234,
        "config": config(),
        "training_metrics": {"val_accuracy": 0.97},
        "dataset_uri": dataset,
        "dataset_manifest_sha256": "d" * 64,
        "min_edge_version": "1.0.0",
        "supported_platforms": ["linux/amd64"],
    }
    values.update(changes)
    return Registration(**values)  # type: ignore[arg-type]


def report(f1: float = 0.95, recalls: tuple[float, ...] = (0.9, 0.95), p95: float = 2.0) -> EvaluationReport:
    """An evaluation's figures."""
    return EvaluationReport(
        dataset_uri="dataset://x",  # what the tests' evaluation requests name
        split="val",
        samples=360,
        device="cpu",
        accuracy=f1,
        precision=f1,
        recall=f1,
        f1=f1,
        latency_p50_ms=p95 / 2,
        latency_p95_ms=p95,
        per_class=[
            ClassScores(label=str(i), precision=0.9, recall=r, f1=0.9, support=36)
            for i, r in enumerate(recalls)
        ],
        confusion=[[30, 6], [2, 34]],
    )


def sign(version: VersionState, approver: str, at: datetime) -> SignedArtifactManifest:
    """A stand-in for the registry's signer (the domain only carries what it returns)."""
    return SignedArtifactManifest(
        manifest_json=f'{{"version_id": "{version.version_id}", "approved_by": "{approver}"}}',
        key_id="k1",
        config_sha256=version.registered.config.config_sha256,
    )


def apply_all(module: ModelModule, events: list[object]) -> ModelModule:
    """The module after `events`."""
    for event in events:
        module = module.apply(event)  # type: ignore[arg-type]
    return module


def registered(*jobs: str) -> ModelModule:
    """A module with one draft version per job, in order."""
    module = ModelModule(ORG, MODULE)
    for job in jobs:
        module = apply_all(module, module.register(registration(job)))
    return module


def evaluated(
    job: str = "job-1", requester: str = "bob", figures: EvaluationReport | None = None
) -> ModelModule:
    """A module whose version for `job` finished its evaluation (testing)."""
    module = registered(job)
    version_id = f"v-{job}"
    module = apply_all(
        module, module.request_evaluation(version_id, "e1", "eval-1", "dataset://x", "val", requester)
    )
    return apply_all(module, module.record_evaluation("eval-1", figures or report()))


def approved(*jobs: str) -> ModelModule:
    """A module with one version per job, each evaluated (asked by bob) and approved by carol."""
    module = registered(*jobs)
    for job in jobs:
        v = f"v-{job}"
        module = apply_all(
            module, module.request_evaluation(v, f"e-{job}", f"eval-{job}", "dataset://x", "val", "bob")
        )
        module = apply_all(module, module.record_evaluation(f"eval-{job}", report()))
        module = apply_all(module, module.approve(v, "carol", [], sign, NOW))
    return module
