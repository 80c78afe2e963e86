"""dataset-svc on the real stack: uploads, duplicates, bad files, labels, reviews, versions, quota."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import grpc
import pytest
from PIL import Image

from modelyard.v1 import datasets_pb2
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_events.schemas.manifest import parse_manifest
from tests.integration.conftest import TINY_DATASET_LIMIT
from tests.integration.dataset_client import DatasetClient, digit_files, upload_requests

pytestmark = pytest.mark.integration
CLASSES = ["0", "1", "2"]


async def refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def blob_files(services: Platform) -> set[Path]:
    root = services.workdir / "blobs"
    return {p for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts}


def staged_files(services: Platform) -> list[Path]:
    return [p for p in (services.workdir / "blobs" / ".staging").rglob("*") if p.is_file()]


async def test_upload_stores_each_content_once_and_reports_duplicates(
    datasets: DatasetClient, fresh_org: str, services: Platform
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    files = [(name, data) for name, data, _ in digit_files(2, [0, 1])]
    first = await datasets.upload(dataset.dataset_id, files)
    assert (first.added, first.duplicates) == (4, 0)
    assert all(
        s.sha256 == hashlib.sha256(data).hexdigest()
        for s, (_, data) in zip(first.samples, files, strict=True)
    )
    again = await datasets.upload(dataset.dataset_id, [("copy.png", files[0][1]), files[1]])
    assert (again.added, again.duplicates, again.bytes_added) == (0, 2, 0)
    assert again.samples[0].sample_id == first.samples[0].sample_id
    await datasets.counts_when(dataset.dataset_id, samples=4, unlabeled=4)
    stored = {p.name for p in blob_files(services)}
    assert {s.sha256 for s in first.samples} <= stored


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("../escape.png", b"\x89PNG", "path"),
        ("empty.png", b"", "empty"),
        ("text.png", b"hello, this is not an image", "PNG"),
        ("truncated.png", "truncated", "PNG"),
        ("notes.exe", b"MZ\x90\x00", "accepted"),
    ],
)
async def test_a_bad_file_refuses_the_whole_upload_and_stores_nothing(
    datasets: DatasetClient, fresh_org: str, services: Platform, name: str, content: object, words: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    good = [(n, d) for n, d, _ in digit_files(2, [2])]
    if content == "truncated":
        content = good[0][1][:40]
    before = blob_files(services)
    error = await refusal(datasets.upload(dataset.dataset_id, [*good, (name, content)]))  # type: ignore[list-item]
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words.lower() in (error.details() or "").lower(), error.details()
    shown = await datasets.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id))
    assert shown.counts.samples == 0
    assert blob_files(services) == before
    assert staged_files(services) == []


async def test_interrupted_upload_leaves_no_sample_and_nothing_staged(
    datasets: DatasetClient, fresh_org: str, services: Platform
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    requests = upload_requests(dataset.dataset_id, [(n, d) for n, d, _ in digit_files(3, [0])])
    sent = asyncio.Event()

    async def stream_then_stall():  # type: ignore[no-untyped-def]
        for request in requests[:-2]:
            yield request
        sent.set()
        await asyncio.sleep(3600)  # a client that stops sending mid-file; the test cancels it

    call = datasets.stub.UploadSamples(stream_then_stall())
    await asyncio.wait_for(sent.wait(), 10)

    async def something_staged() -> bool:
        return staged_files(services) != []

    await eventually(something_staged, 10.0, "the server staging the files sent so far")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    shown = await datasets.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id))
    assert shown.counts.samples == 0

    async def nothing_staged() -> bool:
        return staged_files(services) == []

    await eventually(nothing_staged, 10.0, "the cancelled upload's staged files removed")


async def test_labels_outside_the_schema_are_refused_and_none_recorded(
    datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    uploaded = await datasets.upload(dataset.dataset_id, [(n, d) for n, d, _ in digit_files(2, [0])])
    ids = [s.sample_id for s in uploaded.samples]
    error = await refusal(datasets.label(dataset.dataset_id, [(ids[0], "0"), (ids[1], "7")]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'7'" in (error.details() or "")
    assert "0, 1, 2" in (error.details() or "")
    sample = await datasets.stub.GetSample(datasets_pb2.SampleRef(sample_id=ids[0]))
    assert sample.state == datasets_pb2.SAMPLE_STATE_UNLABELED
    assert sample.version == 0


async def test_two_reviewers_racing_on_one_sample_one_wins_the_other_is_aborted(
    services: Platform, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, CLASSES)
    uploaded = await datasets.upload(dataset.dataset_id, [(n, d) for n, d, _ in digit_files(1, [1])])
    sample_id = uploaded.samples[0].sample_id
    await datasets.label(dataset.dataset_id, [(sample_id, "1")])
    seen = await datasets.stub.GetSample(datasets_pb2.SampleRef(sample_id=sample_id))
    async with (
        DatasetClient.connect(services.dataset_target, services.token(subject="ada")) as ada,
        DatasetClient.connect(services.dataset_target, services.token(subject="grace")) as grace,
    ):
        decisions = [
            ada.stub.ReviewSample(
                datasets_pb2.ReviewSampleRequest(
                    sample_id=sample_id,
                    decision=datasets_pb2.REVIEW_DECISION_APPROVE,
                    expected_version=seen.version,
                )
            ),
            grace.stub.ReviewSample(
                datasets_pb2.ReviewSampleRequest(
                    sample_id=sample_id,
                    decision=datasets_pb2.REVIEW_DECISION_REJECT,
                    reason="blurry",
                    expected_version=seen.version,
                )
            ),
        ]
        results = await asyncio.gather(*decisions, return_exceptions=True)
    won = [r for r in results if isinstance(r, datasets_pb2.Sample)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 1, results
    assert len(lost) == 1, results
    assert lost[0].code() == grpc.StatusCode.ABORTED
    final = await datasets.stub.GetSample(datasets_pb2.SampleRef(sample_id=sample_id))
    assert final.version == seen.version + 1
    assert final.reviewed_by in ("ada", "grace")


async def test_consensus_and_agreement_from_several_annotators(services: Platform, fresh_org: str) -> None:
    async with (
        DatasetClient.connect(services.dataset_target, services.token(subject="ann-1")) as one,
        DatasetClient.connect(services.dataset_target, services.token(subject="ann-2")) as two,
        DatasetClient.connect(services.dataset_target, services.token(subject="ann-3")) as three,
    ):
        dataset = await one.create(fresh_org, CLASSES)
        uploaded = await one.upload(dataset.dataset_id, [(n, d) for n, d, _ in digit_files(1, [2])])
        sample_id = uploaded.samples[0].sample_id
        await one.label(dataset.dataset_id, [(sample_id, "2")])
        await two.label(dataset.dataset_id, [(sample_id, "1")])
        tied = await one.stub.GetSample(datasets_pb2.SampleRef(sample_id=sample_id))
        assert not tied.HasField("consensus")
        assert tied.agreement == pytest.approx(0.5)
        error = await refusal(one.approve(sample_id))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "consensus" in (error.details() or "")
        await three.label(dataset.dataset_id, [(sample_id, "2")])
        approved = await one.approve(sample_id)
    assert approved.state == datasets_pb2.SAMPLE_STATE_VERIFIED
    assert approved.consensus.class_name == "2"
    assert approved.agreement == pytest.approx(2 / 3)
    assert 0 < approved.quality < 1


async def test_published_version_is_frozen_with_its_manifest_hash_and_readiness(
    datasets: DatasetClient, fresh_org: str
) -> None:
    files = digit_files(5, [0, 1, 2])
    dataset = await datasets.build(fresh_org, files, CLASSES)
    version = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id, seed=7, family="image_classifier")
    )
    assert (version.version, version.samples) == (1, 15)
    assert version.uri == f"dataset://{dataset.dataset_id}/1"
    assert version.readiness.ready, version.readiness
    assert version.split.train + version.split.val + version.split.test == 15
    assert version.split.val >= 3
    manifest_reply = await datasets.stub.GetManifest(
        datasets_pb2.VersionRef(dataset_id=dataset.dataset_id, version=1)
    )
    manifest = parse_manifest(manifest_reply.manifest_json, version.manifest_sha256)
    assert {s.label.class_name for s in manifest.samples if s.label} == set(CLASSES)
    # More data later makes version 2; version 1 stays exactly as it was.
    extra = await datasets.upload(dataset.dataset_id, [(n, d) for n, d, _ in digit_files(6, [0])[5:]])
    await datasets.label(dataset.dataset_id, [(extra.samples[0].sample_id, "0")])
    await datasets.approve(extra.samples[0].sample_id)
    second = await datasets.stub.PublishVersion(
        datasets_pb2.PublishVersionRequest(dataset_id=dataset.dataset_id, seed=7)
    )
    assert (second.version, second.samples) == (2, 16)
    again = await datasets.stub.GetManifest(datasets_pb2.VersionRef(dataset_id=dataset.dataset_id, version=1))
    assert again.manifest_json == manifest_reply.manifest_json
    streamed = datasets.stub.DownloadManifest(
        datasets_pb2.VersionRef(dataset_id=dataset.dataset_id, version=1)
    )
    assert b"".join([chunk.data async for chunk in streamed]) == manifest_reply.manifest_json
    sha = manifest.samples[0].sha256
    chunks = datasets.stub.DownloadSamples(
        datasets_pb2.DownloadSamplesRequest(dataset_id=dataset.dataset_id, version=1, sha256=[sha, sha])
    )
    received = [chunk async for chunk in chunks]
    assert [chunk.sha256 for chunk in received if chunk.sha256] == [sha]  # asked twice, sent once
    assert hashlib.sha256(b"".join(chunk.data for chunk in received)).hexdigest() == sha
    too_many = datasets.stub.DownloadSamples(
        datasets_pb2.DownloadSamplesRequest(dataset_id=dataset.dataset_id, version=1, sha256=[sha] * 5001)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        _ = [chunk async for chunk in too_many]
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 5000" in (refused.value.details() or "")


async def test_readiness_names_what_is_missing(datasets: DatasetClient, fresh_org: str) -> None:
    dataset = await datasets.build(fresh_org, digit_files(5, [0]) + digit_files(2, [1]), CLASSES)
    report = await datasets.stub.GetReadiness(datasets_pb2.ReadinessRequest(dataset_id=dataset.dataset_id))
    assert not report.ready
    failed = {c.name: c.detail for c in report.checks if not c.passed}
    assert "samples_per_class" in failed
    assert "'1'" in failed["samples_per_class"]
    assert "'2'" in failed["samples_per_class"]


async def test_the_plan_dataset_limit_is_enforced_per_organization(datasets: DatasetClient) -> None:
    dataset = await datasets.create("tinyco", CLASSES)
    noise = [(f"noise-{i}.png", _noise_png(seed=i)) for i in range(4)]
    size = sum(len(d) for _, d in noise)
    assert size > TINY_DATASET_LIMIT, "the files must pass the limit together"
    first = await datasets.upload(dataset.dataset_id, noise[:1])
    error = await refusal(datasets.upload(dataset.dataset_id, noise[1:]))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Professional" in (error.details() or "")
    assert "nothing was stored" in (error.details() or "")
    shown = await datasets.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id))
    assert shown.counts.samples == first.added == 1


def _noise_png(seed: int) -> bytes:
    # Random pixels barely compress, so each PNG is about 7 kB.
    pixels = (hashlib.sha256(str(seed).encode()).digest() * 200)[: 80 * 80]
    buffer = io.BytesIO()
    Image.frombytes("L", (80, 80), bytes(b ^ (i * 31 % 251) for i, b in enumerate(pixels))).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


async def test_a_stream_that_ends_before_every_announced_file_arrived_stores_nothing(
    datasets: DatasetClient, fresh_org: str, services: Platform
) -> None:
    # A cancelled client can look, to the server, like one that finished: the count tells them apart.
    dataset = await datasets.create(fresh_org, CLASSES)
    files = [(n, d) for n, d, _ in digit_files(3, [1])]
    requests = upload_requests(dataset.dataset_id, files)
    requests[0].start.files = 4
    error = await refusal(datasets.stub.UploadSamples(iter(requests)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "4 files were announced but 3 arrived" in (error.details() or "")
    shown = await datasets.stub.GetDataset(datasets_pb2.DatasetRef(dataset_id=dataset.dataset_id))
    assert shown.counts.samples == 0
    assert staged_files(services) == []


async def test_datasets_are_listed_by_module_and_samples_by_state(
    datasets: DatasetClient, fresh_org: str
) -> None:
    digits = await datasets.create(fresh_org, CLASSES)
    other = await datasets.stub.CreateDataset(
        datasets_pb2.CreateDatasetRequest(
            org_id=fresh_org,
            name="letters",
            ai_module="letter-reader",
            environment=datasets_pb2.ENVIRONMENT_STAGING,
            label_schema=datasets_pb2.LabelSchema(
                task=datasets_pb2.LABEL_TASK_CLASSIFICATION, classes=["a", "b"]
            ),
        )
    )
    uploaded = await datasets.upload(digits.dataset_id, [(n, d) for n, d, _ in digit_files(2, [0])])
    await datasets.label(digits.dataset_id, [(uploaded.samples[0].sample_id, "0")])

    listed = await datasets.stub.ListDatasets(
        datasets_pb2.ListDatasetsRequest(org_id=fresh_org, ai_module="digit-reader")
    )
    assert [d.dataset_id for d in listed.datasets] == [digits.dataset_id]
    assert (listed.datasets[0].counts.samples, listed.datasets[0].counts.labeled) == (2, 1)
    staging = await datasets.stub.ListDatasets(
        datasets_pb2.ListDatasetsRequest(org_id=fresh_org, environment=datasets_pb2.ENVIRONMENT_STAGING)
    )
    assert [d.dataset_id for d in staging.datasets] == [other.dataset_id]
    labeled = await datasets.stub.ListSamples(
        datasets_pb2.ListSamplesRequest(
            dataset_id=digits.dataset_id, states=[datasets_pb2.SAMPLE_STATE_LABELED]
        )
    )
    assert [s.sample_id for s in labeled.samples] == [uploaded.samples[0].sample_id]
    error = await refusal(
        datasets.stub.ListSamples(datasets_pb2.ListSamplesRequest(dataset_id=digits.dataset_id, states=[42]))  # type: ignore[list-item]
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_repeated_publish_request_returns_its_version_and_refuses_other_parameters(
    datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.build(fresh_org, digit_files(3, [0, 1]), CLASSES)
    request = datasets_pb2.PublishVersionRequest(
        dataset_id=dataset.dataset_id, seed=5, request_id="release-1"
    )
    first = await datasets.stub.PublishVersion(request)
    again = await datasets.stub.PublishVersion(request)
    assert (again.version, again.manifest_sha256) == (first.version, first.manifest_sha256)
    assert again.HasField("published_at")
    request.seed = 6
    error = await refusal(datasets.stub.PublishVersion(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "use a new request id" in (error.details() or "")
