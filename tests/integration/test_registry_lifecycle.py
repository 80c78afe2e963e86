"""The registry's rules on the real stack: evaluation, four eyes, gates, release, rollback, downloads."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import grpc
import pytest
from google.protobuf import struct_pb2

from modelyard.v1 import events_pb2, jobs_pb2, registry_pb2
from modelyard_artifacts.download import download_artifact
from modelyard_artifacts.integrity import ArtifactMismatch
from modelyard_artifacts.manifest import ManifestVerifier, SignedManifest, verify_artifact_file
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from tests.integration.job_client import JobClient
from tests.integration.registry_client import APPROVED, DEPRECATED, DRAFT, RELEASED, TESTING, RegistryClient
from tests.integration.registry_flow import approved_version, evaluated, train_version
from tests.integration.trainers import Trainers

pytestmark = pytest.mark.integration


@pytest.fixture
async def registry(services: Platform) -> AsyncIterator[RegistryClient]:
    """A super_admin client of registry-svc, subject "dev" (who also creates the jobs)."""
    async with RegistryClient.connect(services.registry_target, services.token()) as client:
        yield client


async def _refused(call: object) -> grpc.aio.AioRpcError:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError("the call was not refused")


async def _get(url: str, token: str | None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=sent) as response:
        return response.status, await response.read()


async def test_a_version_goes_from_draft_through_evaluation_and_four_eyes_approval_to_release(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-registry-flow")
    version = await train_version(jobs, registry, fresh_org, digits_uri)
    version_id = version.version_id
    # Nothing but evaluation is allowed from draft, and the refusal says what is.
    early = await _refused(registry.stub.ApproveVersion(registry_pb2.VersionCommand(version_id=version_id)))
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "it is draft" in (early.details() or "")
    assert "evaluate" in (early.details() or "")

    async with RegistryClient.connect(services.registry_target, services.token(subject="bob")) as bob:
        tested = await evaluated(bob, version_id)
        assert tested.status == TESTING
        figures = tested.evaluation
        assert figures.finished
        assert figures.split == "val"
        assert figures.samples > 100
        assert figures.requested_by == "bob"
        assert 0.5 < figures.f1 <= 1.0
        assert 0 < figures.latency_p50_ms <= figures.latency_p95_ms
        assert len(figures.per_class) == 10
        assert len(figures.confusion) == 10
        assert sum(sum(row.counts) for row in figures.confusion) == figures.samples
        assert tested.f1_score == figures.f1
        assert tested.inference_time_ms == figures.latency_p50_ms
        # Four eyes: neither the job's creator (dev) nor the evaluation's requester (bob) approves.
        own = await _refused(registry.stub.ApproveVersion(registry_pb2.VersionCommand(version_id=version_id)))
        asked = await _refused(bob.stub.ApproveVersion(registry_pb2.VersionCommand(version_id=version_id)))
    assert own.code() == asked.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "dev created training job" in (own.details() or "")
    assert "bob requested the evaluation" in (asked.details() or "")

    async with RegistryClient.connect(services.registry_target, services.token(subject="carol")) as carol:
        approved = await carol.stub.ApproveVersion(registry_pb2.VersionCommand(version_id=version_id))
        assert approved.status == APPROVED
        assert approved.approved_by == "carol"
        assert approved.is_approved
        assert [g.gate for g in approved.gates] == ["f1 >= 0.5", "latency_p95_ms <= 5000"]
        assert all(g.passed for g in approved.gates)
        manifest = ManifestVerifier.from_texts([services.registry_key.public_text()]).verify(  # type: ignore[union-attr]
            SignedManifest.from_json(approved.signed_manifest_json.encode())
        )
        assert (manifest.version_id, manifest.approved_by) == (version_id, "carol")
        assert (manifest.artifact_sha256, manifest.semantic_version) == (version.artifact_sha256, "1.0.0")

        no_notes = await _refused(
            carol.stub.ReleaseVersion(registry_pb2.ReleaseRequest(version_id=version_id))
        )
        assert no_notes.code() == grpc.StatusCode.INVALID_ARGUMENT
        released = await carol.stub.ReleaseVersion(
            registry_pb2.ReleaseRequest(version_id=version_id, release_notes="first digits reader")
        )
        assert released.status == RELEASED
        assert list(released.environments) == ["production"]
        assert released.release_notes == "first digits reader"
        assert released.HasField("released_at")
    mine: list[str] = []

    async def all_five_served() -> bool:
        # ReadEvents serves signed events only, and a head is signed a few milliseconds after its
        # append: the release may not be served the instant ReleaseVersion returns.
        events = await registry.stub.ReadEvents(events_pb2.ReadEventsRequest(after_position=0, limit=1000))
        mine[:] = [e.type for e in events.events if e.stream_id == f"{fresh_org}/digit-reader"]
        return len(mine) >= 5

    await eventually(all_five_served, 15, "the release served by ReadEvents")
    assert mine == [
        "ModelVersionRegistered",
        "ModelEvaluationRequested",
        "ModelEvaluated",
        "ModelApproved",
        "ModelReleased",
    ]


async def test_a_failing_gate_is_refused_naming_the_gate_its_threshold_and_the_measured_value(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-registry-gate")
    version = await train_version(jobs, registry, fresh_org, digits_uri, module="strict-reader")
    await evaluated(registry, version.version_id)
    async with RegistryClient.connect(services.registry_target, services.token(subject="carol")) as carol:
        refused = await _refused(
            carol.stub.ApproveVersion(registry_pb2.VersionCommand(version_id=version.version_id))
        )
        rejected = await carol.stub.RejectVersion(
            registry_pb2.VersionCommand(version_id=version.version_id, reason="below the bar")
        )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = refused.details() or ""
    assert "f1 >= 0.9999 failed: measured 0." in details
    assert "threshold 0.9999" in details
    assert (await registry.get(version.version_id)).status == DRAFT == rejected.status
    assert rejected.status_reason == "below the bar"


async def test_rollback_releases_the_earlier_version_and_deprecates_the_current_one_as_events(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-registry-rollback")
    first = await approved_version(services, jobs, registry, fresh_org, digits_uri)
    second = await approved_version(services, jobs, registry, fresh_org, digits_uri)
    assert (first.semantic_version, second.semantic_version) == ("1.0.0", "1.0.1")
    for version in (first, second):
        await registry.stub.ReleaseVersion(
            registry_pb2.ReleaseRequest(
                version_id=version.version_id, release_notes=f"v{version.semantic_version}"
            )
        )
    no_reason = await _refused(
        registry.stub.RollbackVersion(registry_pb2.RollbackRequest(target_version_id=first.version_id))
    )
    assert no_reason.code() == grpc.StatusCode.INVALID_ARGUMENT
    reply = await registry.stub.RollbackVersion(
        registry_pb2.RollbackRequest(target_version_id=first.version_id, reason="1.0.1 misreads sevens")
    )
    assert reply.released.version_id == first.version_id
    assert list(reply.released.environments) == ["production"]
    assert reply.deprecated.version_id == second.version_id
    assert reply.deprecated.status == DEPRECATED
    assert reply.deprecated.status_reason == "1.0.1 misreads sevens"
    final = await _refused(
        registry.stub.ReleaseVersion(
            registry_pb2.ReleaseRequest(version_id=second.version_id, release_notes="x")
        )
    )
    assert final.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deprecated is final" in (final.details() or "")


async def test_downloads_need_a_valid_unexpired_url_and_the_token_of_its_audience_and_serve_ranges(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-registry-download")
    version = await approved_version(services, jobs, registry, fresh_org, digits_uri)
    await registry.stub.ReleaseVersion(
        registry_pb2.ReleaseRequest(version_id=version.version_id, release_notes="for downloads")
    )
    dev = services.token()
    url = (
        await registry.stub.GetDownloadUrl(registry_pb2.DownloadUrlRequest(version_id=version.version_id))
    ).url

    status, body = await _get(url, dev)
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == version.artifact_sha256
    status, part = await _get(url, dev, {"Range": "bytes=10-19"})
    assert status == 206
    assert part == body[10:20]
    assert (await _get(url, services.token(subject="mallory")))[0] == 403  # another caller's token
    assert (await _get(url, None))[0] == 403
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    for field, value in (("aud", "mallory"), ("sha256", "0" * 64), ("exp", str(int(query["exp"]) + 60))):
        altered = parts._replace(query=urlencode({**query, field: value})).geturl()
        assert (await _get(altered, dev))[0] == 403
    unsigned = parts._replace(query=urlencode({k: v for k, v in query.items() if k != "sig"})).geturl()
    assert (await _get(unsigned, dev))[0] == 403

    # An edge gets URLs for released versions only, and only for itself.
    async with RegistryClient.connect(
        services.registry_target, services.token(("edge",), fresh_org, "edge-7")
    ) as edge:
        mine = await edge.stub.GetDownloadUrl(registry_pb2.DownloadUrlRequest(version_id=version.version_id))
        other = await _refused(
            edge.stub.GetDownloadUrl(
                registry_pb2.DownloadUrlRequest(version_id=version.version_id, audience="edge-8")
            )
        )
    assert (await _get(mine.url, services.token(("edge",), fresh_org, "edge-7")))[0] == 200
    assert other.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_an_expired_url_is_refused(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-registry-expiry")
    version = await train_version(jobs, registry, fresh_org, digits_uri)
    reply = await registry.stub.GetDownloadUrl(
        registry_pb2.DownloadUrlRequest(version_id=version.version_id, ttl_s=3)
    )
    assert (await _get(reply.url, services.token()))[0] == 200
    refusals: list[bytes] = []

    async def refused() -> bool:  # expiry is in whole seconds, so 3 s leaves the first GET at least 2 s
        status, body = await _get(reply.url, services.token())
        refusals.append(body)
        return status == 403

    await eventually(refused, 15, "the 3-second URL to expire")
    assert b"expired" in refusals[-1]


async def test_a_tampered_artifact_in_the_store_is_caught_on_download_and_by_verify(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
    tmp_path: Path,
) -> None:
    await trainers.start("t-registry-tamper")
    version = await approved_version(services, jobs, registry, fresh_org, digits_uri)
    blob = next((services.workdir / "registry-blobs").rglob(version.artifact_sha256))
    original = blob.read_bytes()
    blob.chmod(0o644)
    blob.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    try:
        reply = await registry.stub.GetDownloadUrl(
            registry_pb2.DownloadUrlRequest(version_id=version.version_id)
        )
        with pytest.raises(ArtifactMismatch):
            await download_artifact(
                reply.url,
                tmp_path / "model.pt",
                expected_sha256=reply.artifact_sha256,
                expected_size=reply.artifact_size_bytes,
                headers={"Authorization": f"Bearer {services.token()}"},
            )
        tampered = tmp_path / "tampered.pt"
        _status, body = await _get(reply.url, services.token())
        tampered.write_bytes(body)
        verifier = ManifestVerifier.from_texts([services.registry_key.public_text()])  # type: ignore[union-attr]
        with pytest.raises(ArtifactMismatch):
            verify_artifact_file(
                tampered, SignedManifest.from_json(reply.signed_manifest_json.encode()), verifier
            )
    finally:
        blob.write_bytes(original)


async def test_a_job_fine_tunes_from_an_approved_version_and_registers_a_version_that_names_its_base(
    jobs: JobClient,
    trainers: Trainers,
    registry: RegistryClient,
    services: Platform,
    fresh_org: str,
    digits_uri: str,
) -> None:
    await trainers.start("t-registry-finetune")
    base = await approved_version(services, jobs, registry, fresh_org, digits_uri)
    draft = await train_version(jobs, registry, fresh_org, digits_uri)

    async def create(base_version_id: str) -> jobs_pb2.Job:
        values = struct_pb2.Struct()
        values.update({"epochs": 1, "lr": 0.0001})
        return await jobs.jobs.CreateJob(
            jobs_pb2.CreateJobRequest(
                name="fine-tune", ai_module="digit-reader", family="image_classifier", dataset_uri=digits_uri,
                hyperparameters=values, org_id=fresh_org, base_version_id=base_version_id,
            )
        )  # fmt: skip

    refused = await _refused(create(draft.version_id))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "draft" in (refused.details() or "")
    job = await create(base.version_id)
    done = await jobs.wait_for(job.job_id, jobs_pb2.JOB_STATE_COMPLETED)
    tuned = await registry.registered_from(fresh_org, job.job_id)

    assert tuned.base_version_id == base.version_id
    assert tuned.semantic_version == "1.0.2"
    assert done.base_version_id == base.version_id
    shown = await jobs.wait_until(job.job_id, lambda j: j.HasField("output_version_id"), "the output version")
    assert shown.output_version_id == tuned.version_id
    # Started from the base's weights: one epoch at a tiny learning rate keeps its accuracy.
    assert tuned.training_metrics["val_accuracy"] >= base.training_metrics["val_accuracy"] - 0.05
