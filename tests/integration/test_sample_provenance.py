"""Sample provenance through the real dataset-svc: uploaded per file, recorded in SamplesAdded,
read back by GetSample and ListSamples (with the file's locator for roles that may download it);
oversized or future provenance refused per file and field before anything is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from modelyard.v1 import audit_pb2, audit_pb2_grpc, datasets_pb2, datasets_pb2_grpc
from modelyard_devstack.platform import Platform
from modelyard_devstack.processes import eventually
from modelyard_grpc import channel
from tests.integration.dataset_client import DatasetClient, digit_files

pytestmark = pytest.mark.integration
CAPTURED = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)


def _at(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _requests(
    dataset_id: str, files: list[tuple[str, bytes, datasets_pb2.UploadFile]]
) -> list[datasets_pb2.UploadSamplesRequest]:
    start = datasets_pb2.UploadStart(dataset_id=dataset_id, files=len(files))
    requests = [datasets_pb2.UploadSamplesRequest(start=start)]
    for _, data, header in files:
        requests.append(datasets_pb2.UploadSamplesRequest(file=header))
        requests.append(datasets_pb2.UploadSamplesRequest(chunk=data))
    return requests


def _header(name: str, data: bytes, **provenance: object) -> datasets_pb2.UploadFile:
    return datasets_pb2.UploadFile(filename=name, size_bytes=len(data), **provenance)  # type: ignore[arg-type]


async def test_provenance_is_stored_per_sample_and_read_back(
    services: Platform, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, ["0", "1"])
    (a, a_bytes, _), (b, b_bytes, _) = digit_files(1, [0, 1])
    camera = "7f8e2c1a-0d4b-4c3e-9a61-2b5d8e0f1a77"
    files = [
        (
            a,
            a_bytes,
            _header(
                a,
                a_bytes,
                source_camera_id=camera,
                captured_at=_at(CAPTURED),
                metadata={"site": "dock 3", "lens": "wide"},
            ),
        ),
        (b, b_bytes, _header(b, b_bytes)),  # provenance is optional
    ]
    uploaded = await datasets.stub.UploadSamples(iter(_requests(dataset.dataset_id, files)))
    ids = {s.filename: s.sample_id for s in uploaded.samples}

    with_provenance = await datasets.stub.GetSample(datasets_pb2.SampleRef(sample_id=ids[a]))
    assert with_provenance.source_camera_id == camera
    assert with_provenance.captured_at.ToDatetime(tzinfo=UTC) == CAPTURED
    assert dict(with_provenance.metadata) == {"site": "dock 3", "lens": "wide"}
    assert with_provenance.file_url == f"dataset://{dataset.dataset_id}/files/{with_provenance.sha256}"
    without = await datasets.stub.GetSample(datasets_pb2.SampleRef(sample_id=ids[b]))
    assert (without.source_camera_id, without.HasField("captured_at"), dict(without.metadata)) == (
        "",
        False,
        {},
    )

    # The views project the same provenance (ListSamples reads them, so wait for them to catch up).
    listed: dict[str, datasets_pb2.Sample] = {}

    async def both_listed() -> bool:
        page = await datasets.stub.ListSamples(datasets_pb2.ListSamplesRequest(dataset_id=dataset.dataset_id))
        listed.update({s.sample_id: s for s in page.samples})
        return len(listed) == 2

    await eventually(both_listed, 30.0, "both samples listed")
    row = listed[ids[a]]
    assert (row.source_camera_id, row.captured_at.ToDatetime(tzinfo=UTC), dict(row.metadata)) == (
        camera,
        CAPTURED,
        {"site": "dock 3", "lens": "wide"},
    )
    assert row.file_url == with_provenance.file_url

    # Its organization's admin (who may download the files) reads it with the locator; another
    # organization's admin is refused without learning whose sample it is.
    async def get_as(org_id: str) -> datasets_pb2.Sample:
        async with channel(services.dataset_target, services.token(("org_admin",), org_id=org_id)) as ch:
            read: datasets_pb2.Sample = await datasets_pb2_grpc.DatasetServiceStub(ch).GetSample(
                datasets_pb2.SampleRef(sample_id=ids[a])
            )
            return read

    own = await get_as(fresh_org)
    assert (own.source_camera_id, own.file_url) == (camera, with_provenance.file_url)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await get_as("org-someone-else")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert fresh_org not in (refused.value.details() or "")


async def test_the_lineage_of_a_sample_shows_its_provenance(
    services: Platform, datasets: DatasetClient, fresh_org: str
) -> None:
    dataset = await datasets.create(fresh_org, ["0", "1"])
    ((name, data, _),) = digit_files(1, [1])
    header = _header(
        name, data, source_camera_id="cam-9", captured_at=_at(CAPTURED), metadata={"site": "gate"}
    )
    uploaded = await datasets.stub.UploadSamples(iter(_requests(dataset.dataset_id, [(name, data, header)])))
    sample_id = uploaded.samples[0].sample_id
    seen: list[audit_pb2.LineageNode] = []

    async with channel(services.job_target, services.token(subject="root")) as ch:
        stub = audit_pb2_grpc.AuditServiceStub(ch)

        async def projected() -> bool:
            try:
                page = await stub.GetLineage(audit_pb2.GetLineageRequest(kind="sample", id=sample_id))
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:  # job-svc has not consumed the upload yet
                    return False
                raise
            seen[:] = [page.start]
            return True

        await eventually(projected, 60.0, "the sample in job-svc's lineage")
    shown = seen[0].sample
    assert (shown.source_camera_id, shown.captured_at.ToDatetime(tzinfo=UTC)) == ("cam-9", CAPTURED)
    assert json.loads(shown.metadata_json) == {"site": "gate"}
    assert shown.file_uri == f"dataset://{dataset.dataset_id}/files/{uploaded.samples[0].sha256}"


@pytest.mark.parametrize(
    ("provenance", "field", "words"),
    [
        ({"metadata": {"note": "x" * 300}}, "metadata", "at most 256"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "17 keys; at most 16"),
        ({"metadata": {f"k{i}": "v" * 200 for i in range(3)}}, "metadata", "bytes as JSON; at most 512"),
        ({"captured_at": "far future"}, "captured_at", "is in the future"),
        ({"source_camera_id": "cam 7; DROP TABLE"}, "source_camera_id", "must be an identifier"),
    ],
)
async def test_bad_provenance_refuses_the_upload_naming_file_and_field(
    datasets: DatasetClient, fresh_org: str, provenance: dict[str, object], field: str, words: str
) -> None:
    dataset = await datasets.create(fresh_org, ["0", "1"])
    ((name, data, _),) = digit_files(1, [0])
    if provenance.get("captured_at") == "far future":
        provenance = {"captured_at": _at(datetime.now(UTC) + timedelta(days=2))}
    files = [(name, data, _header(name, data, **provenance))]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await datasets.stub.UploadSamples(iter(_requests(dataset.dataset_id, files)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert f"files.{name}.{field}" in details
    assert words in details
    # Nothing of the refused upload was recorded: the same file, sent again without it, is new.
    again = await datasets.stub.UploadSamples(
        iter(_requests(dataset.dataset_id, [(name, data, _header(name, data))]))
    )
    assert (again.added, again.duplicates) == (1, 0)
